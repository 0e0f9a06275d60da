"""Strength belongs to an a/b choice: a tie or both-bad stores none, and exports say so."""

import json

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from annotate.models import PairwiseChoice
from annotate.services.assignments import assignment_next
from annotate.services.feedback import annotation_submit
from learning.data import strength_to_margin
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


def answer(study, annotator, key: str, **given):
    assignment = assignment_next(study=study, annotator=annotator)
    annotation, _ = annotation_submit(query=assignment.query, annotator=annotator, client_key=key, answer=given)
    return PairwiseChoice.objects.get(annotation=annotation)


def test_a_tie_or_both_bad_stores_no_strength_and_an_a_or_b_keeps_it():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=4)
    assert answer(study, annotator, "k1", choice="tie", strength=3).strength is None
    assert answer(study, annotator, "k2", choice="both_bad").strength is None
    assert answer(study, annotator, "k3", choice="a", strength=3).strength == 3
    assert answer(study, annotator, "k4", choice="b").strength == 2  # the default when none is given


def test_the_database_refuses_a_strength_on_a_tie_and_a_missing_one_on_a_vote():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=1)
    vote = answer(study, annotator, "k1", choice="a", strength=1)
    for choice, strength in (("tie", 2), ("a", None)):
        with pytest.raises(IntegrityError), transaction.atomic():
            PairwiseChoice.objects.filter(pk=vote.pk).update(choice=choice, strength=strength)


def exported(study, format: str) -> list[dict]:
    client = APIClient()
    client.force_authenticate(study.created_by)
    reply = client.get(f"/api/v1/studies/{study.pk}/export/?format={format}")
    assert reply.status_code == 200
    return [json.loads(line) for line in b"".join(reply.streaming_content).decode().splitlines()]


def test_exports_show_no_strength_for_a_tie_and_trl_margins_only_from_votes():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=2)
    answer(study, annotator, "k1", choice="tie", strength=3)
    answer(study, annotator, "k2", choice="a", strength=3)

    raw = {row["pairwise"]["choice"]: row["pairwise"]["strength"] for row in exported(study, "raw")}
    assert raw["tie"] is None and set(raw.values()) == {None, 3}
    (trl,) = exported(study, "trl")
    assert trl["strength"] == 3 and trl["margin"] == pytest.approx(strength_to_margin(3))
