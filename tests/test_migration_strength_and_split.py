"""Migration 0009: existing tie and both-bad votes lose their meaningless strength; a/b votes keep theirs."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("annotate", "0008_manager_query_kind_labels")]
AFTER = [("annotate", "0009_reward_strength_and_split")]


@pytest.mark.django_db(transaction=True)
def test_migrating_clears_strength_on_ties_and_both_bad_and_unassigns_default_splits():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="old-annotator")
    study = old.get_model("annotate", "Study").objects.create(name="Old", created_by_id=user.pk)
    prompt = old.get_model("annotate", "Prompt").objects.create(study=study, external_id="p", messages=[], split="train")
    Query = old.get_model("annotate", "Query")
    Annotation = old.get_model("annotate", "Annotation")
    PairwiseChoice = old.get_model("annotate", "PairwiseChoice")
    for choice in ("a", "b", "tie", "both_bad"):
        query = Query.objects.create(study=study, prompt=prompt, key=choice)
        annotation = Annotation.objects.create(query=query, annotator=user, client_key=choice)
        PairwiseChoice.objects.create(annotation=annotation, choice=choice, shown_choice=choice, strength=3)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    strengths = dict(new.get_model("annotate", "PairwiseChoice").objects.values_list("choice", "strength"))
    assert strengths == {"a": 3, "b": 3, "tie": None, "both_bad": None}
    assert new.get_model("annotate", "Prompt").objects.get().split == ""

    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes("annotate"))
