"""The train command: a run from the command line, followed with a progress bar."""

import pytest
from django.core.management import CommandError, call_command

from annotate.models import ModelVersion, TrainingRun
from tests.factories import UserFactory, make_items, make_study
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db(transaction=True)


def test_train_inline_registers_a_version_and_prints_its_metrics(capsys):
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=10)
    label_preferring_first_response(study, annotator)
    call_command("train", str(study.pk), "--inline", "--set", "epochs=1", "--set", "max_length=48", "--set", "batch_size=4")
    run = TrainingRun.objects.get(study=study)
    assert run.status == "succeeded" and run.config["epochs"] == 1
    assert ModelVersion.objects.filter(run=run).exists()
    captured = capsys.readouterr()
    assert "heldout_accuracy" in captured.out
    assert "training" in captured.err  # the progress bar


def test_train_refuses_a_run_that_could_not_train_saying_why():
    study = make_study()
    with pytest.raises(CommandError, match="Nothing was started: a reward model needs 8 usable pairs; has 0"):
        call_command("train", str(study.pk), "--inline")


def test_train_refuses_an_unknown_config_key():
    study = make_study()
    with pytest.raises(CommandError, match="Unknown config key"):
        call_command("train", str(study.pk), "--inline", "--set", "epochz=2")
