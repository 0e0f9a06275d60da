"""A study's fixed evaluation split: given once per prompt, kept as labels and prompts arrive, shared by every run."""

import pytest

from annotate.models import ModelVersion, Prompt
from annotate.selectors.training_data import eval_groups
from annotate.services.splits import EVAL_FRACTION, study_split_assign
from annotate.services.training import training_data, training_run_execute, training_run_start
from learning.data import fixed_split
from tests.factories import BOTH_SIDES_PROMPTS, UserFactory, make_items, make_run, make_study
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db


def splits(study) -> dict[str, str]:
    return dict(Prompt.objects.filter(study=study).values_list("external_id", "split"))


def test_every_prompt_gets_the_side_its_hash_gives_and_keeps_it_when_more_prompts_arrive():
    study = make_study()
    make_items(study, n_prompts=BOTH_SIDES_PROMPTS)
    assert set(splits(study).values()) == {""}  # nothing is decided before it is needed

    assert study_split_assign(study=study) == BOTH_SIDES_PROMPTS
    first = splits(study)
    assert first == {key: fixed_split(key, seed=study.pk, eval_fraction=EVAL_FRACTION) for key in first}
    assert set(first.values()) == {"train", "eval"}

    make_items(study, n_prompts=30, prefix="later")
    assert study_split_assign(study=study) == 30  # only the new ones
    after = splits(study)
    assert {key: after[key] for key in first} == first


def test_a_stored_side_is_never_recomputed():
    study = make_study()
    make_items(study, n_prompts=3)
    study_split_assign(study=study)
    prompt = Prompt.objects.filter(study=study).first()
    flipped = "eval" if prompt.split == "train" else "train"
    Prompt.objects.filter(pk=prompt.pk).update(split=flipped)
    assert study_split_assign(study=study) == 0
    prompt.refresh_from_db()
    assert prompt.split == flipped


def test_every_kind_of_run_is_given_the_same_eval_prompts(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=BOTH_SIDES_PROMPTS)
    runs = [make_run(study, kind) for kind in ("reward", "rating_reward", "span_reward")]  # no labels needed
    given = [training_data(run)["eval_groups"] for run in runs]
    expected = sorted(str(pk) for pk in Prompt.objects.filter(study=study, split="eval").values_list("pk", flat=True))
    assert expected and all(sorted(groups) == expected for groups in given)
    assert sorted(eval_groups(study)) == expected


def test_bt_and_davidson_versions_are_scored_on_the_studys_eval_prompts(tiny_encoder_dir, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=BOTH_SIDES_PROMPTS)
    label_preferring_first_response(study, annotator)
    versions = {}
    for loss in ("bt", "davidson"):
        config = {"base_model": str(tiny_encoder_dir), "loss": loss, "epochs": 1, "max_length": 48}
        run = training_run_start(study=study, requested_by=study.created_by, kind="reward", config=config, enqueue=False)
        training_run_execute(run_id=run.pk)
        versions[loss] = ModelVersion.objects.get(run=run)
    n_eval_prompts = Prompt.objects.filter(study=study, split="eval").count()
    assert n_eval_prompts > 0
    assert versions["bt"].metrics["n_eval"] == versions["davidson"].metrics["n_eval"] == n_eval_prompts
    metrics = versions["bt"].metrics
    assert metrics["heldout_accuracy_ci95_low"] <= metrics["heldout_accuracy"] <= metrics["heldout_accuracy_ci95_high"]
