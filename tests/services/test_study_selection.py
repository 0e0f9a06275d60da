"""A study's selection strategy, its parameters and the training config its rounds use are checked when set."""

import pytest

from annotate.errors import InvalidInput
from annotate.models.studies import SelectionStrategy
from annotate.services.studies import study_update
from learning.select import STRATEGIES
from tests.factories import make_study

pytestmark = pytest.mark.django_db


def test_every_strategy_learning_implements_can_be_chosen():
    assert SelectionStrategy.values == list(STRATEGIES)
    study = make_study()
    for name in STRATEGIES:
        assert study_update(study=study, selection_strategy=name).selection_strategy == name


def test_an_unknown_strategy_is_refused_naming_it():
    with pytest.raises(InvalidInput) as error:
        study_update(study=make_study(), selection_strategy="clairvoyant")
    assert error.value.field == "selection_strategy" and "clairvoyant" in error.value.message


def test_an_unknown_parameter_is_refused_naming_it():
    study = make_study(selection_strategy="d_optimal")
    with pytest.raises(InvalidInput) as error:
        study_update(study=study, selection_params={"lambda": 2})
    assert error.value.field == "selection_params" and "lambda" in error.value.message


def test_a_bad_parameter_value_is_refused_naming_the_parameter():
    study = make_study(selection_strategy="d_optimal")
    with pytest.raises(InvalidInput) as error:
        study_update(study=study, selection_params={"lam": 0})
    assert error.value.field == "selection_params.lam"
    study.refresh_from_db()
    assert study.selection_params == {}


def test_parameters_are_checked_against_the_strategy_they_go_with():
    study = make_study(selection_strategy="d_optimal", selection_params={"lam": 2.0})
    # Switching strategy drops the old strategy's parameters rather than refusing them.
    assert study_update(study=study, selection_strategy="random").selection_params == {}
    with pytest.raises(InvalidInput) as error:
        study_update(study=study, selection_params={"lam": 2.0})  # random takes no lam
    assert error.value.field == "selection_params"


def test_the_training_config_of_the_rounds_is_checked_as_a_run_config_naming_its_field():
    study = make_study()
    assert study_update(study=study, training_config={"epochs": 1}).training_config == {"epochs": 1}
    with pytest.raises(InvalidInput) as error:
        study_update(study=study, training_config={"epochs": 0})
    assert error.value.field == "training_config.epochs"
    with pytest.raises(InvalidInput) as error:
        study_update(study=study, training_config={"warp": 9})
    assert error.value.field == "training_config" and "warp" in error.value.message
