"""Rankings, spans, critiques and ratings through the API: what is stored, and what is refused."""

import pytest
from rest_framework.test import APIClient

from annotate.models import Annotation, CritiquePart, Query, RankingPart, RatingPart, SpanPart
from annotate.services.items import items_import
from tests.factories import UserFactory, jsonl, make_study

pytestmark = pytest.mark.django_db

TRICKY = "Café 👩‍👩‍👧 naïve 東京 e\u0301te\u0301 — fin."


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def study_asking(kinds, responses, annotator, **fields):
    study = make_study(annotators=[annotator], feedback_kinds=kinds, **fields)
    items_import(study=study, lines=jsonl([{"id": "p1", "prompt": "Tell me something.", "responses": responses}]))
    return study


def next_for(client, study) -> dict:
    reply = client.get(f"/api/v1/studies/{study.pk}/queries/next/")
    assert reply.status_code == 200, reply.content
    return reply.json()


def submit(client, query_id, **answer):
    return client.post(f"/api/v1/queries/{query_id}/annotations/", {"client_key": "k", **answer}, format="json")


def test_a_ranking_study_makes_one_query_per_prompt_and_stores_the_groups_as_given():
    annotator = UserFactory()
    study = study_asking(["ranking"], ["r1", "r2", "r3", "r4"], annotator)
    assert Query.objects.filter(study=study).count() == 1
    client = client_for(annotator)
    body = next_for(client, study)
    assert body["kind"] == "ranking" and body["asks"] == ["ranking"] and len(body["responses"]) == 4
    ids = [r["id"] for r in body["responses"]]
    groups = [[ids[2]], [ids[0], ids[3]], [ids[1]]]
    assert submit(client, body["id"], ranking=groups).status_code == 201
    assert RankingPart.objects.get().groups == groups


@pytest.mark.parametrize(
    ("make_groups", "complaint"),
    [
        (lambda ids: [[ids[0]], [ids[1]]], "omits response"),
        (lambda ids: [[ids[0]], [ids[1], ids[0]], [ids[2]]], "repeats response"),
        (lambda ids: [[ids[0]], [ids[1]], [ids[2]], [999999]], "not one of this query's responses"),
    ],
)
def test_a_ranking_that_omits_or_repeats_a_response_is_refused_and_stores_nothing(make_groups, complaint):
    annotator = UserFactory()
    study = study_asking(["ranking"], ["r1", "r2", "r3"], annotator)
    client = client_for(annotator)
    body = next_for(client, study)
    reply = submit(client, body["id"], ranking=make_groups([r["id"] for r in body["responses"]]))
    assert reply.status_code == 400
    assert complaint in reply.json()["detail"] and reply.json()["field"] == "ranking"
    assert not Annotation.objects.exists()


def test_cannot_rank_needs_a_reason_and_is_kept_with_it():
    annotator = UserFactory()
    study = study_asking(["ranking"], ["r1", "r2", "r3"], annotator)
    client = client_for(annotator)
    body = next_for(client, study)
    assert submit(client, body["id"], cannot_rank=" ").status_code == 400
    assert submit(client, body["id"], cannot_rank="All three are in Finnish").status_code == 201
    assert RankingPart.objects.get().cannot_rank_reason == "All three are in Finnish"


def test_a_ranking_study_refuses_a_prompt_with_too_few_or_too_many_responses():
    study = make_study(feedback_kinds=["ranking"])
    from annotate.errors import InvalidInput

    with pytest.raises(InvalidInput, match="line 1, field responses: this study needs at least 3"):
        items_import(study=study, lines=jsonl([{"prompt": "x", "responses": ["a", "b"]}]))
    with pytest.raises(InvalidInput, match="at most 8"):
        items_import(study=study, lines=jsonl([{"prompt": "x", "responses": [str(i) for i in range(9)]}]))


def test_spans_may_overlap_and_nest_and_use_code_point_offsets():
    annotator = UserFactory()
    study = study_asking(["spans"], [TRICKY], annotator)
    client = client_for(annotator)
    body = next_for(client, study)
    assert body["kind"] == "single" and {c["key"] for c in body["span_taxonomy"]} >= {"irrelevant", "missing-information"}
    rid = body["responses"][0]["id"]
    start = TRICKY.index("東京")
    spans = [
        {"response": rid, "start": 0, "end": len(TRICKY), "category": "irrelevant"},
        {"response": rid, "start": start, "end": start + 2, "category": "wrong-grounding", "note": "not Kyoto"},
        {"response": rid, "start": start - 3, "end": start + 1, "category": "redundant"},
        {"response": rid, "category": "missing-information", "note": "no date"},
    ]
    assert submit(client, body["id"], spans=spans).status_code == 201
    stored = {s.category: s for s in SpanPart.objects.all()}
    nested = stored["wrong-grounding"]
    assert TRICKY[nested.start : nested.end] == "東京"
    assert stored["missing-information"].start is None
    assert len(stored) == 4


@pytest.mark.parametrize(
    ("span", "field"),
    [
        ({"start": 0, "end": len(TRICKY) + 1, "category": "irrelevant"}, "spans[0].end"),
        ({"start": 5, "end": 5, "category": "irrelevant"}, "spans[0].end"),
        ({"start": 0, "end": 3, "category": "rude"}, "spans[0].category"),
    ],
)
def test_a_span_outside_the_text_or_of_an_unknown_category_is_refused(span, field):
    annotator = UserFactory()
    study = study_asking(["spans"], [TRICKY], annotator)
    client = client_for(annotator)
    body = next_for(client, study)
    reply = submit(client, body["id"], spans=[{"response": body["responses"][0]["id"], **span}])
    assert reply.status_code == 400 and reply.json()["field"] == field
    assert not SpanPart.objects.exists() and not Annotation.objects.exists()


def test_a_pairwise_query_can_also_ask_for_a_critique_with_a_revision():
    annotator = UserFactory()
    study = study_asking(["pairwise", "critique"], ["Paris is in Spain.", "Paris is in France."], annotator)
    client = client_for(annotator)
    body = next_for(client, study)
    assert body["asks"] == ["pairwise", "critique"]
    loser = next(r for r in body["responses"] if "Spain" in r["text"])
    shown = "b" if body["responses"][0] == loser else "a"
    critique = {"response": loser["id"], "critique": "Wrong country.", "revision": "Paris is in France."}
    reply = submit(client, body["id"], choice=shown, strength=3, critiques=[critique])
    assert reply.status_code == 201, reply.content
    stored = CritiquePart.objects.get()
    assert (stored.response_id, stored.revision) == (loser["id"], "Paris is in France.")


def test_an_empty_revision_marked_as_a_revision_is_refused():
    annotator = UserFactory()
    study = study_asking(["critique"], ["Some answer."], annotator)
    client = client_for(annotator)
    body = next_for(client, study)
    rid = body["responses"][0]["id"]
    reply = submit(client, body["id"], critiques=[{"response": rid, "critique": "Too short.", "revision": "   "}])
    assert reply.status_code == 400 and reply.json()["field"] == "critiques[0].revision"
    assert not Annotation.objects.exists()


def test_a_long_response_may_get_a_revision_up_to_twice_its_length():
    annotator = UserFactory()
    long_answer = "word " * 5_000 + "and it goes on."  # 25,015 characters: over the 20,000 of other texts
    study = study_asking(["critique"], [long_answer], annotator)
    client = client_for(annotator)
    body = next_for(client, study)
    rid = body["responses"][0]["id"]
    too_long = "x" * (2 * len(long_answer) + 1)
    reply = submit(client, body["id"], critiques=[{"response": rid, "critique": "Rambles.", "revision": too_long}])
    assert reply.status_code == 400
    assert reply.json()["detail"] == f"critiques[0].revision is longer than {2 * len(long_answer)} characters."
    edited = long_answer.replace("and it goes on.", "and then it stops.")
    reply = submit(client, body["id"], critiques=[{"response": rid, "critique": "Rambles.", "revision": edited}])
    assert reply.status_code == 201, reply.json()
    assert CritiquePart.objects.get().revision == edited


def test_ratings_cover_every_aspect_on_the_scale():
    annotator = UserFactory()
    aspects = [{"key": "clarity", "label": "Clarity"}, {"key": "accuracy", "label": "Accuracy"}]
    study = study_asking(["ratings"], ["An answer."], annotator, rating_aspects=aspects)
    client = client_for(annotator)
    body = next_for(client, study)
    assert [a["key"] for a in body["rating_aspects"]] == ["clarity", "accuracy"]
    rid = body["responses"][0]["id"]
    out_of_scale = submit(client, body["id"], ratings=[{"response": rid, "aspect": "clarity", "value": 6}])
    assert out_of_scale.status_code == 400 and out_of_scale.json()["field"] == "ratings[0].value"
    incomplete = submit(client, body["id"], ratings=[{"response": rid, "aspect": "clarity", "value": 4}])
    assert incomplete.status_code == 400 and "accuracy" in incomplete.json()["detail"]
    full = [{"response": rid, "aspect": "clarity", "value": 4}, {"response": rid, "aspect": "accuracy", "value": 2}]
    assert submit(client, body["id"], ratings=full).status_code == 201
    assert dict(RatingPart.objects.values_list("aspect", "value")) == {"clarity": 4, "accuracy": 2}


def test_a_part_the_query_does_not_ask_for_is_refused():
    annotator = UserFactory()
    study = study_asking(["pairwise"], ["a", "b"], annotator)
    client = client_for(annotator)
    body = next_for(client, study)
    reply = submit(client, body["id"], choice="a", ratings=[])
    assert reply.status_code == 400 and "does not ask for ratings" in reply.json()["detail"]


def test_a_manager_changes_the_kinds_and_an_annotator_cannot():
    manager, annotator = UserFactory(), UserFactory()
    study = make_study(manager=manager, annotators=[annotator])
    url = f"/api/v1/studies/{study.pk}/"
    assert client_for(annotator).patch(url, {"feedback_kinds": ["ranking"]}, format="json").status_code == 403
    bad = client_for(manager).patch(url, {"feedback_kinds": ["pairwise", "ranking"]}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "feedback_kinds"
    ok = client_for(manager).patch(url, {"feedback_kinds": ["ratings", "ranking"]}, format="json")
    assert ok.status_code == 200 and ok.json()["feedback_kinds"] == ["ranking", "ratings"]


def test_the_api_takes_single_as_the_settings_page_does_and_refuses_it_alone_in_the_same_words():
    manager, annotator = UserFactory(), UserFactory()
    study = make_study(manager=manager, annotators=[annotator])
    url = f"/api/v1/studies/{study.pk}/"
    ok = client_for(manager).patch(url, {"feedback_kinds": ["single", "spans"]}, format="json")
    assert ok.status_code == 200 and ok.json()["feedback_kinds"] == ["spans"]
    study.refresh_from_db()
    items_import(study=study, lines=jsonl([{"id": "s1", "prompt": "Hi?", "responses": ["Hello.", "Hey."]}]))
    assert set(study.queries.values_list("kind", flat=True)) == {"single"}
    alone = client_for(manager).patch(url, {"feedback_kinds": ["single"]}, format="json")
    assert alone.status_code == 400
    assert alone.json() == {
        "detail": "Shown one response at a time (single), a query must still ask for something: add spans, critique or ratings.",
        "field": "feedback_kinds",
    }
    both = client_for(manager).patch(url, {"feedback_kinds": ["single", "ranking"]}, format="json")
    assert both.json()["detail"] == (
        "A study shows its responses one way: pairwise, ranking or single (one response at a time); "
        "not single and ranking together."
    )
