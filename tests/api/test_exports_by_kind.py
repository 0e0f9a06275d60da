"""Exports of every kind through the API, checked against what was labelled; and the FG-RLHF import."""

import json

import pytest
from rest_framework.test import APIClient

from annotate.models import Annotation, Prompt
from annotate.services.assignments import assignment_next
from annotate.services.exports import EXPORT_FORMATS
from annotate.services.feedback import annotation_revise, annotation_submit
from annotate.services.items import items_import
from tests.factories import UserFactory, jsonl, make_study
from tests.qa_feedback import qa_file, qa_record

pytestmark = pytest.mark.django_db

TRICKY = "Café 👩‍👩‍👧 naïve 東京 e\u0301te\u0301 — fin."
SPAIN, FRANCE = "Paris is in Spain.", "Paris is in France."
REVISED = "Paris is in France, not Spain."


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def export(study, format: str, **params):
    """(reply, rows) of an export, read as its JSON lines."""
    query = "&".join(f"{k}={v}" for k, v in {"format": format, **params}.items())
    reply = client_for(study.created_by).get(f"/api/v1/studies/{study.pk}/export/?{query}")
    if reply.status_code != 200:
        return reply, None
    return reply, [json.loads(line) for line in b"".join(reply.streaming_content).decode().splitlines()]


def study_with(kinds, prompts: dict[str, list[str]], annotator, **fields):
    study = make_study(annotators=[annotator], feedback_kinds=kinds, **fields)
    items_import(study=study, lines=jsonl([{"id": pid, "prompt": f"About {pid}?", "responses": r} for pid, r in prompts.items()]))
    return study


def answer_next(study, annotator, make_answer) -> Annotation:
    """Take the next query and answer it; make_answer gets the responses by text and the assignment."""
    assignment = assignment_next(study=study, annotator=annotator)
    assert assignment is not None
    by_text = {r.text: r for r in assignment.query.ordered_responses()}
    annotation, _ = annotation_submit(
        query=assignment.query, annotator=annotator, client_key=f"k{assignment.pk}", answer=make_answer(by_text, assignment)
    )
    return annotation


def shown(assignment, canonical: str) -> str:
    """The on-screen letter for a canonical choice (a = the query's first response)."""
    if canonical not in ("a", "b"):
        return canonical
    position = 0 if canonical == "a" else 1
    return "a" if assignment.display_order[0] == position else "b"


def prefer(text: str):
    """An answer choosing the response with this text."""

    def make(by_text, assignment):
        canonical = "a" if assignment.query.ordered_responses()[0].text == text else "b"
        return {"choice": shown(assignment, canonical), "strength": 3}

    return make


def rank(*groups: list[str]):
    return lambda by_text, _: {"ranking": [[by_text[t].pk for t in group] for group in groups]}


def chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def pairwise_and_revision_study():
    """One vote for France with a revision of Spain; one tie on another prompt."""
    annotator = UserFactory()
    study = study_with(["pairwise", "critique"], {"paris": [SPAIN, FRANCE], "rome": ["Rome.", "Roma."]}, annotator)

    def paris(by_text, assignment):
        critique = {"response": by_text[SPAIN].pk, "critique": "Wrong country.", "revision": REVISED}
        return {**prefer(FRANCE)(by_text, assignment), "critiques": [critique]}

    def rome(by_text, assignment):
        return {"choice": "tie", "critiques": [{"response": by_text["Rome."].pk, "critique": "Terse."}]}

    for _ in range(2):
        answer_next(study, annotator, lambda by_text, a: paris(by_text, a) if SPAIN in by_text else rome(by_text, a))
    return study


def test_trl_rows_come_from_votes_and_revisions_and_sources_pick_among_them():
    study = pairwise_and_revision_study()
    reply, rows = export(study, "trl")
    assert reply["X-Preflab-Rows"] == "2" and reply["X-Preflab-Skipped-Ties"] == "1"
    by_source = {row["source"]: row for row in rows}
    vote = by_source["pairwise"]
    assert (vote["chosen"], vote["rejected"], vote["margin"], vote["strength"]) == (chat(FRANCE), chat(SPAIN), 1.0, 3)
    revision = by_source["revision"]
    assert (revision["chosen"], revision["rejected"], revision["margin"]) == (chat(REVISED), chat(SPAIN), 0.0)
    assert revision["prompt"] == [{"role": "user", "content": "About paris?"}] and revision["prompt_id"] == "paris"
    assert all(set(row) == set(rows[0]) for row in rows)  # one schema for every row

    assert [r["source"] for r in export(study, "trl", sources="pairwise")[1]] == ["pairwise"]
    reply, rows = export(study, "trl", sources="revision")
    assert [r["source"] for r in rows] == ["revision"] and reply["X-Preflab-Rows"] == "1"
    assert len(export(study, "trl", sources="revision,pairwise")[1]) == 2
    bad, _ = export(study, "trl", sources="pairwise,votes")
    assert bad.status_code == 400 and "'votes'" in bad.json()["detail"] and bad.json()["field"] == "sources"
    wrong, _ = export(study, "raw", sources="pairwise")
    assert wrong.status_code == 400 and wrong.json()["field"] == "sources"


def ranking_study():
    """[[r3], [r1, r4], [r2]] on one prompt, cannot-rank on the other."""
    annotator = UserFactory()
    study = study_with(["ranking"], {"p": ["r1", "r2", "r3", "r4"], "q": ["x1", "x2", "x3"]}, annotator)
    for _ in range(2):
        answer_next(
            study,
            annotator,
            lambda by_text, a: (
                rank(["r3"], ["r1", "r4"], ["r2"])(by_text, a) if "r1" in by_text else {"cannot_rank": "All empty."}
            ),
        )
    return study


def test_a_ranking_exports_as_every_ordered_pair_across_groups_in_trl():
    reply, rows = export(ranking_study(), "trl")
    pairs = {(row["chosen"][0]["content"], row["rejected"][0]["content"], row["rank_gap"]) for row in rows}
    assert pairs == {("r3", "r1", 1), ("r3", "r4", 1), ("r3", "r2", 2), ("r1", "r2", 1), ("r4", "r2", 1)}
    assert all(row["source"] == "ranking" and row["margin"] == 0.0 and row["strength"] is None for row in rows)
    assert reply["X-Preflab-Rows"] == "5" and reply["X-Preflab-Skipped-Cannot-Rank"] == "1"


def test_rankings_export_as_ordered_lists_keeping_cannot_rank_with_its_reason():
    reply, rows = export(ranking_study(), "rankings")
    assert reply["X-Preflab-Rows"] == "2" and reply["X-Preflab-Cannot-Rank"] == "1"
    ranked, refused = sorted(rows, key=lambda r: r["prompt_id"])
    text = {r["id"]: r["text"] for r in ranked["responses"]}
    assert [r["text"] for r in ranked["responses"]] == ["r1", "r2", "r3", "r4"]
    assert [[text[i] for i in group] for group in ranked["ranking"]] == [["r3"], ["r1", "r4"], ["r2"]]
    assert ranked["cannot_rank_reason"] == ""
    assert (refused["ranking"], refused["cannot_rank_reason"]) == ([], "All empty.")
    assert ranked["annotator"].startswith("ann-")


def test_spans_export_in_the_qa_feedback_shape_with_code_point_offsets():
    annotator = UserFactory()
    study = study_with(["spans"], {"p": [TRICKY, "Plain answer."]}, annotator)
    start = TRICKY.index("東京")

    def mark(by_text, _):
        if TRICKY not in by_text:
            return {"spans": []}
        rid = by_text[TRICKY].pk
        return {
            "spans": [
                {"response": rid, "start": start, "end": start + 2, "category": "wrong-grounding", "note": "not Kyoto"},
                {"response": rid, "start": 0, "end": len(TRICKY), "category": "irrelevant"},
                {"response": rid, "category": "missing-information", "note": "no date"},
            ]
        }

    answer_next(study, annotator, mark)
    answer_next(study, annotator, mark)
    reply, rows = export(study, "spans")
    assert reply["X-Preflab-Rows"] == "2"
    by_text = {row["response"]: row for row in rows}
    marked = by_text[TRICKY]
    assert marked["question"] == "About p?" and marked["prompt"] == [{"role": "user", "content": "About p?"}]
    assert marked["feedback"] == {
        "errors": [
            {"error type": "Wrong-Grounding", "explanation": "not Kyoto", "start": start, "end": start + 2},
            {"error type": "Irrelevant", "explanation": "", "start": 0, "end": len(TRICKY)},
        ],
        "missing-info": [{"error type": "Missing-Information", "explanation": "no date"}],
    }
    error = marked["feedback"]["errors"][0]
    assert marked["response"][error["start"] : error["end"]] == "東京"
    assert by_text["Plain answer."]["feedback"] == {"errors": [], "missing-info": []}


def test_critiques_export_with_the_revision_or_an_empty_one():
    reply, rows = export(pairwise_and_revision_study(), "critiques")
    assert reply["X-Preflab-Rows"] == "2" and reply["X-Preflab-With-Revision"] == "1"
    got = {(r["response"], r["critique"], r["revision"]) for r in rows}
    assert got == {(SPAIN, "Wrong country.", REVISED), ("Rome.", "Terse.", "")}
    assert all(set(r) >= {"prompt", "response", "critique", "revision", "annotator", "query_id"} for r in rows)


def test_ratings_export_one_row_per_response_with_every_aspect():
    annotator = UserFactory()
    aspects = [{"key": "clarity", "label": "Clarity"}, {"key": "accuracy", "label": "Accuracy"}]
    study = study_with(["pairwise", "ratings"], {"p": [SPAIN, FRANCE]}, annotator, rating_aspects=aspects)
    scores = {SPAIN: (4, 1), FRANCE: (5, 5)}

    def rate(by_text, assignment):
        ratings = [
            {"response": by_text[text].pk, "aspect": aspect, "value": value}
            for text, values in scores.items()
            for aspect, value in zip(["clarity", "accuracy"], values, strict=True)
        ]
        return {**prefer(FRANCE)(by_text, assignment), "ratings": ratings}

    answer_next(study, annotator, rate)
    reply, rows = export(study, "ratings")
    assert reply["X-Preflab-Rows"] == "2"
    assert {r["response"]: r["ratings"] for r in rows} == {
        SPAIN: {"clarity": 4, "accuracy": 1},
        FRANCE: {"clarity": 5, "accuracy": 5},
    }


def test_kto_rows_follow_the_documented_mapping():
    annotator = UserFactory()
    study = study_with(["pairwise"], {"win": ["good", "bad"], "bothbad": ["meh", "worse"], "tie": ["same", "alike"]}, annotator)
    for _ in range(3):
        answer_next(
            study,
            annotator,
            lambda by_text, a: (
                prefer("good")(by_text, a) if "good" in by_text else {"choice": "both_bad" if "meh" in by_text else "tie"}
            ),
        )
    reply, rows = export(study, "kto")
    labels = {(row["completion"][0]["content"], row["label"]) for row in rows}
    assert labels == {("good", True), ("bad", False), ("meh", False), ("worse", False)}
    assert reply["X-Preflab-Rows"] == "4" and reply["X-Preflab-Desirable"] == "1" and reply["X-Preflab-Undesirable"] == "3"
    assert reply["X-Preflab-Skipped-Ties"] == "1"

    reply, rows = export(ranking_study(), "kto")
    assert {(row["completion"][0]["content"], row["label"]) for row in rows} == {("r3", True), ("r2", False)}
    assert reply["X-Preflab-Skipped-Cannot-Rank"] == "1"

    _, rows = export(pairwise_and_revision_study(), "kto", sources="revision")
    assert [(row["completion"][0]["content"], row["label"], row["source"]) for row in rows] == [
        (REVISED, True, "revision"),
        (SPAIN, False, "revision"),
    ]


def test_raw_keeps_every_annotation_with_all_its_parts():
    annotator = UserFactory()
    study = study_with(["pairwise", "spans", "critique", "ratings"], {"p": [SPAIN, FRANCE]}, annotator)

    def everything(by_text, assignment):
        spain = by_text[SPAIN].pk
        ratings = [{"response": r.pk, "aspect": a["key"], "value": 3} for r in by_text.values() for a in study.rating_aspects]
        return {
            **prefer(FRANCE)(by_text, assignment),
            "spans": [{"response": spain, "start": 12, "end": 17, "category": "wrong-grounding"}],
            "critiques": [{"response": spain, "critique": "Wrong.", "revision": FRANCE + " Really."}],
            "ratings": ratings,
        }

    annotation = answer_next(study, annotator, everything)
    reply, rows = export(study, "raw")
    assert reply["X-Preflab-Rows"] == "1"
    (row,) = rows
    assert row["annotation_id"] == annotation.pk and row["asks"] == ["pairwise", "spans", "critique", "ratings"]
    assert row["display_order"] == annotation.assignment.display_order
    spain = next(r["id"] for r in row["responses"] if r["text"] == SPAIN)
    assert row["pairwise"]["choice"] == ("b" if row["responses"][1]["text"] == FRANCE else "a")
    assert row["pairwise"]["strength"] == 3
    assert row["spans"] == [
        {"response": spain, "start": 12, "end": 17, "category": "wrong-grounding", "note": "", "metadata": {}}
    ]
    assert row["critiques"] == [{"response": spain, "critique": "Wrong.", "revision": FRANCE + " Really."}]
    assert len(row["ratings"]) == 8 and row["ranking"] is None and row["supersedes"] is None


def changed_vote() -> tuple:
    """A study with one vote for SPAIN, changed in the workspace's way to FRANCE: (study, first, correction)."""
    annotator = UserFactory()
    study = study_with(["pairwise"], {"p": [SPAIN, FRANCE]}, annotator)
    first = answer_next(study, annotator, prefer(SPAIN))
    correction, _ = annotation_revise(
        annotation=first, annotator=annotator, client_key="fix", answer=prefer(FRANCE)(None, first.assignment)
    )
    return study, first, correction


def test_a_superseded_annotation_gives_way_to_its_correction_in_the_label_exports():
    study, _, correction = changed_vote()
    _, rows = export(study, "trl")
    assert [(r["chosen"], r["annotation_id"]) for r in rows] == [(chat(FRANCE), correction.pk)]
    _, rows = export(study, "kto")
    assert {r["annotation_id"] for r in rows} == {correction.pk}


def test_raw_shows_a_superseded_annotation_marked_beside_its_correction():
    study, first, correction = changed_vote()
    reply, rows = export(study, "raw")
    assert (reply["X-Preflab-Rows"], reply["X-Preflab-Superseded"]) == ("2", "1")
    marks = [(r["annotation_id"], r["supersedes"], r["superseded_by"], r["current"]) for r in rows]
    assert marks == [(first.pk, None, correction.pk, False), (correction.pk, first.pk, None, True)]
    assert rows[0]["pairwise"]["choice"] != rows[1]["pairwise"]["choice"]


@pytest.mark.parametrize("format", EXPORT_FORMATS)
def test_the_rows_header_counts_the_rows_of_every_format(format):
    studies = [pairwise_and_revision_study(), ranking_study()]
    annotator = UserFactory()
    spans_study = study_with(["spans", "ratings"], {"p": ["one", "two"]}, annotator)
    for _ in range(2):
        answer_next(
            spans_study,
            annotator,
            lambda by_text, a: {
                "spans": [{"response": r.pk, "start": 0, "end": 2, "category": "redundant"} for r in by_text.values()],
                "ratings": [
                    {"response": r.pk, "aspect": x["key"], "value": 2}
                    for r in by_text.values()
                    for x in spans_study.rating_aspects
                ],
            },
        )
    for study in [*studies, spans_study]:
        reply, rows = export(study, format)
        assert reply.status_code == 200
        assert reply["X-Preflab-Rows"] == str(len(rows)), (format, study.feedback_kinds)
        assert reply["Content-Disposition"].endswith(f'-{format}.jsonl"')


def test_an_unknown_export_format_is_refused_naming_it_and_the_known_ones():
    reply, _ = export(make_study(), "xlsx")
    assert reply.status_code == 400 and reply.json()["field"] == "format"
    assert "'xlsx'" in reply.json()["detail"] and all(name in reply.json()["detail"] for name in EXPORT_FORMATS)


# --- FG-RLHF import through the API ---------------------------------------------------------


def import_url(study, format="fgrlhf") -> str:
    return f"/api/v1/studies/{study.pk}/import/?format={format}"


def test_an_fgrlhf_file_imports_as_json_or_multipart_and_exports_back():
    records = [qa_record(), qa_record(question="Another?", preference=[2, 2, 2, 0, 0, 1])]
    study = make_study()
    client = client_for(study.created_by)
    reply = client.post(import_url(study), qa_file(*records), content_type="application/json")
    assert reply.status_code == 201, reply.content
    assert reply.json()["prompts_created"] == 2 and reply.json()["annotations_created"] == 14
    assert export(study, "fgrlhf")[1] == records

    other = make_study(manager=study.created_by)
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("dev.json", qa_file(*records), content_type="application/json")
    reply = client.post(import_url(other), {"file": upload}, format="multipart")
    assert reply.status_code == 201, reply.content
    assert export(other, "fgrlhf")[1] == records
    again = client.post(import_url(other), qa_file(*records), content_type="application/json")
    assert again.status_code == 200 and again.json()["prompts_unchanged"] == 2 and again.json()["annotations_created"] == 0


def test_a_malformed_fgrlhf_record_is_refused_naming_record_and_field_and_stores_nothing():
    study = make_study()
    bad = qa_record(question="Bad?", preference=[1, 1, 1, 2, 0, 9])
    reply = client_for(study.created_by).post(import_url(study), qa_file(qa_record(), bad), content_type="application/json")
    assert reply.status_code == 400
    assert "record 2 (array index 1), field preference[5]" in reply.json()["detail"]
    assert reply.json()["field"] == "preference[5]"
    assert not Prompt.objects.exists() and not Annotation.objects.exists()


def test_import_refuses_an_unknown_format_or_the_wrong_content_type():
    study = make_study()
    client = client_for(study.created_by)
    reply = client.post(import_url(study, "csv"), b"a,b", content_type="text/csv")
    assert reply.status_code == 400 and "'csv'" in reply.json()["detail"] and reply.json()["field"] == "format"
    reply = client.post(import_url(study), qa_file(qa_record()), content_type="application/x-ndjson")
    assert reply.status_code == 400 and reply.json()["field"] == "Content-Type"
    assert "application/json" in reply.json()["detail"]
    assert not Prompt.objects.exists()


def test_only_a_manager_may_import():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    reply = client_for(annotator).post(import_url(study), qa_file(qa_record()), content_type="application/json")
    assert reply.status_code == 403 and not Prompt.objects.exists()


@pytest.mark.shared_data
def test_the_shared_qa_feedback_file_round_trips_through_the_api(shared_data):
    body = (shared_data / "qa_feedback_dev_first250.json").read_bytes()
    study = make_study()
    reply = client_for(study.created_by).post(import_url(study), body, content_type="application/json")
    assert reply.status_code == 201 and reply.json()["prompts_created"] == 250
    reply, rows = export(study, "fgrlhf")
    assert reply["X-Preflab-Rows"] == "250"
    for number, (got, want) in enumerate(zip(rows, json.loads(body), strict=True), start=1):
        assert got == want, f"record {number} differs"
