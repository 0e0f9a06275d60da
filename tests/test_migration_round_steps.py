"""Migration 0017: a round's training run (Round.run) becomes one of the round's jobs (TrainingRun.round), and back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("annotate", "0016_study_status_and_quota")]
AFTER = [("annotate", "0017_round_steps")]


@pytest.mark.django_db(transaction=True)
def test_a_rounds_training_run_is_kept_as_its_job_and_a_run_of_no_round_stays_so():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="old-manager")
    study = old.get_model("annotate", "Study").objects.create(name="Old", created_by_id=user.pk)
    TrainingRun = old.get_model("annotate", "TrainingRun")
    trained, by_hand = (TrainingRun.objects.create(study=study, kind="reward") for _ in range(2))
    round_ = old.get_model("annotate", "Round").objects.create(study=study, number=1, strategy="random", size=5, run=trained)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    rounds = dict(new.get_model("annotate", "TrainingRun").objects.values_list("pk", "round_id"))
    assert rounds == {trained.pk: round_.pk, by_hand.pk: None}

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    again = executor.loader.project_state(BEFORE).apps
    assert again.get_model("annotate", "Round").objects.get().run_id == trained.pk

    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes("annotate"))
