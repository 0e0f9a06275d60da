"""The review pages: a query's answers side by side, escaped, with Accept / Reject and a note."""

import json

import pytest

from annotate.models import Annotation, Query
from annotate.selectors.labels import annotator_pseudonym
from annotate.services.assignments import assignment_next
from annotate.services.feedback import annotation_submit
from annotate.services.items import items_import
from annotate.services.studies import membership_add
from tests.factories import UserFactory, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    manager, ana = UserFactory(username="mina"), UserFactory(username="ana")
    study = make_study(manager=manager, annotators=[ana], feedback_kinds=["pairwise"])
    record = {"id": "x", "prompt": "Say hi", "responses": ["<script>alert(1)</script>", "Hello **there**"]}
    items_import(study=study, lines=[json.dumps(record)])
    assignment = assignment_next(study=study, annotator=ana)
    annotation, _ = annotation_submit(query=assignment.query, annotator=ana, client_key="k", answer={"choice": "tie"})
    return study, manager, ana, annotation


def test_the_query_page_shows_each_answer_with_its_annotator_and_escapes_model_text(client, setup):
    study, manager, _, annotation = setup
    client.force_login(manager)
    page = client.get(f"/studies/{study.pk}/review/{annotation.query_id}/").content.decode()
    assert "<script>alert(1)</script>" not in page and "alert(1)" in page
    assert "<strong>there</strong>" in page  # sanitised markdown
    assert "ana" in page and "Tie" in page
    assert f'action="/studies/{study.pk}/review/answers/{annotation.pk}/"' in page
    listing = client.get(f"/studies/{study.pk}/review/").content.decode()
    assert f"/studies/{study.pk}/review/{annotation.query_id}/" in listing


def test_rejecting_from_the_page_keeps_the_answer_and_the_annotator_sees_the_note(client, setup):
    study, manager, ana, annotation = setup
    client.force_login(manager)
    reply = client.post(f"/studies/{study.pk}/review/answers/{annotation.pk}/", {"verdict": "rejected", "note": "Read B again"})
    assert reply.status_code == 302
    assert Annotation.objects.get(pk=annotation.pk).rejected_by.note == "Read B again"
    assert Query.objects.get(pk=annotation.query_id).label_count == 0
    client.force_login(ana)
    workspace = client.get(f"/studies/{study.pk}/annotate/").content.decode()
    assert "Read B again" in workspace


def test_a_bad_verdict_from_the_page_says_so_and_stores_nothing(client, setup):
    study, manager, _, annotation = setup
    client.force_login(manager)
    reply = client.post(f"/studies/{study.pk}/review/answers/{annotation.pk}/", {"verdict": "meh"}, follow=True)
    assert "verdict must be one of" in reply.content.decode()
    assert not annotation.reviews.exists()


def test_a_query_of_another_study_is_not_found_under_this_one(client, setup):
    study, manager, _, annotation = setup
    other = make_study(manager=manager, name="Other")
    client.force_login(manager)
    assert client.get(f"/studies/{other.pk}/review/{annotation.query_id}/").status_code == 404


def test_a_reviewer_sees_the_pseudonym_not_the_username(client, setup):
    study, _, ana, annotation = setup
    reviewer = UserFactory(username="rev")
    membership_add(study=study, username="rev", role="reviewer")
    client.force_login(reviewer)
    page = client.get(f"/studies/{study.pk}/review/{annotation.query_id}/").content.decode()
    assert annotator_pseudonym(ana.pk) in page and ">ana " not in page
