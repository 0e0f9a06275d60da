"""Gold questions: checked answers, mixing at the study's rate, qualification, accuracy, and no gold in any label read."""

import random

import pytest

from annotate.errors import InvalidInput
from annotate.models import Annotation, Query
from annotate.selectors.gold import gold_accuracy
from annotate.selectors.training_data import preference_pairs
from annotate.services.assignments import assignment_next
from annotate.services.exports import export_build
from annotate.services.feedback import annotation_submit
from annotate.services.gold import NotQualified, query_mark_gold
from annotate.services.items import items_import
from annotate.services.studies import study_update
from tests.factories import UserFactory, jsonl, make_answer, make_items, make_study

pytestmark = pytest.mark.django_db


def answer(assignment, annotator, canonical: str) -> None:
    """Submit a canonical choice (a = position 0) as the annotator would press it on screen."""
    shown = canonical if assignment.display_order[0] == 0 else {"a": "b", "b": "a"}[canonical]
    annotation_submit(
        query=assignment.query, annotator=annotator, client_key=f"k-{assignment.pk}", answer={"choice": shown, "strength": 2}
    )


def gold_study(n_gold: int, n_real: int, **fields):
    worker = UserFactory()
    study = make_study(annotators=[worker], **fields)
    make_items(study, n_prompts=n_gold + n_real)
    for query in Query.objects.filter(study=study).order_by("id")[:n_gold]:
        query_mark_gold(query=query, answer={"choice": "a"})
    return study, worker


def test_a_gold_answer_that_is_not_valid_for_its_query_is_refused_naming_the_field():
    study = make_study()
    make_items(study, n_prompts=1)
    query = Query.objects.get(study=study)
    cases = [
        ({"choice": "c"}, "gold.choice"),
        ({"ranking": [[0], [1]]}, "gold.ranking"),  # a pairwise query does not ask for a ranking
        ({"colour": "red"}, "gold.colour"),
        ({}, "gold"),
    ]
    for bad, field in cases:
        with pytest.raises(InvalidInput) as caught:
            query_mark_gold(query=query, answer=bad)
        assert caught.value.field == field
    query.refresh_from_db()
    assert not query.is_gold and query.gold_answer is None


def test_a_ranking_gold_must_order_every_position_once():
    study = make_study(feedback_kinds=["ranking"])
    make_items(study, n_prompts=1, n_responses=3)
    query = Query.objects.get(study=study)
    with pytest.raises(InvalidInput) as caught:
        query_mark_gold(query=query, answer={"ranking": [[0], [0, 1]]})
    assert caught.value.field == "gold.ranking"
    query_mark_gold(query=query, answer={"ranking": [[2], [0, 1]]})
    assert Query.objects.get(pk=query.pk).gold_answer == {"ranking": [[2], [0, 1]]}


@pytest.mark.parametrize("field, value", [("gold_rate", 1.5), ("qualification_pass", -0.1), ("qualification_items", -1)])
def test_gold_settings_out_of_range_are_refused_naming_the_field(field, value):
    study = make_study()
    with pytest.raises(InvalidInput) as caught:
        study_update(study=study, **{field: value})
    assert caught.value.field == field


def test_gold_is_mixed_in_at_the_studys_rate():
    study, worker = gold_study(n_gold=60, n_real=140, gold_rate=0.3)
    rng = random.Random(7)
    served_gold = 0
    for _ in range(100):
        assignment = assignment_next(study=study, annotator=worker, rng=rng)
        served_gold += assignment.query.is_gold
        answer(assignment, worker, "a")
    # Binomial(100, 0.3): mean 30, sd 4.6; a study without mixing gives 0 or 100.
    assert 18 <= served_gold <= 42


def test_gold_is_never_served_at_rate_zero_and_does_not_count_against_overlap():
    study, worker = gold_study(n_gold=2, n_real=2)
    served = []
    while (assignment := assignment_next(study=study, annotator=worker)) is not None:
        served.append(assignment.query.is_gold)
        answer(assignment, worker, "a")
    assert served == [False, False]
    other = UserFactory()
    study_update(study=study, gold_rate=1.0)
    from annotate.services.studies import membership_add

    membership_add(study=study, username=other.username, role="annotator")
    assert assignment_next(study=study, annotator=worker).query.is_gold
    assert assignment_next(study=study, annotator=other).query.is_gold  # served to everyone, overlap 1 or not


def test_gold_is_served_in_a_round_loop_whatever_the_round():
    study, worker = gold_study(n_gold=1, n_real=1, gold_rate=1.0)
    Query.objects.filter(study=study, is_gold=False).update(round=1)
    study.loop_status, study.current_round = "running", 2
    study.save()
    assert assignment_next(study=study, annotator=worker).query.is_gold


def qualify(study, worker, canonical_answers: list[str]) -> None:
    for canonical in canonical_answers:
        assignment = assignment_next(study=study, annotator=worker)
        assert assignment.query.is_gold  # qualifying: only gold
        answer(assignment, worker, canonical)


def test_an_annotator_who_passes_qualification_then_gets_real_queries():
    study, worker = gold_study(n_gold=5, n_real=3, qualification_items=4, qualification_pass=0.75)
    qualify(study, worker, ["a", "a", "b", "a"])
    assert not assignment_next(study=study, annotator=worker, rng=random.Random(1)).query.is_gold


def test_an_annotator_who_fails_qualification_gets_no_real_query_and_is_told_why():
    study, worker = gold_study(n_gold=5, n_real=3, qualification_items=4, qualification_pass=0.75)
    qualify(study, worker, ["a", "b", "b", "a"])
    with pytest.raises(NotQualified) as caught:
        assignment_next(study=study, annotator=worker)
    assert caught.value.status_code == 403
    assert "did not qualify" in caught.value.message and "50%" in caught.value.message


def test_gold_accuracy_per_annotator_has_its_wilson_interval():
    study, good = gold_study(n_gold=4, n_real=0)
    poor = UserFactory()
    gold = list(Query.objects.filter(study=study, is_gold=True))
    for query in gold:
        make_answer(query, good, choice="a")
    for query, choice in zip(gold, ["a", "b", "b", "tie"], strict=True):
        make_answer(query, poor, choice=choice)
    rows = {row.annotator_id: row for row in gold_accuracy(study=study)}
    assert (rows[good.pk].answered, rows[good.pk].correct, rows[good.pk].accuracy) == (4, 4, 1.0)
    assert (rows[poor.pk].correct, rows[poor.pk].accuracy) == (1, 0.25)
    # Wilson 95% for 1 of 4: (0.0456, 0.6994); for 4 of 4: (0.5101, 1.0).
    assert rows[poor.pk].low == pytest.approx(0.0456, abs=1e-3) and rows[poor.pk].high == pytest.approx(0.6994, abs=1e-3)
    assert rows[good.pk].low == pytest.approx(0.5101, abs=1e-3) and rows[good.pk].high == pytest.approx(1.0)


def test_answers_to_gold_queries_are_left_out_of_exports_and_training():
    study, worker = gold_study(n_gold=1, n_real=1)
    gold, real = Query.objects.filter(study=study).order_by("-is_gold")
    make_answer(gold, worker, choice="a")
    make_answer(real, worker, choice="b")
    assert Annotation.objects.filter(query__study=study).count() == 2
    for format in ("trl", "kto", "raw"):
        export = export_build(study=study, format=format)
        rows = list(export.rows)
        assert rows and all(row.get("query_id", real.pk) == real.pk for row in rows), format
        assert export.counts["rows"] == len(rows)
    assert len(preference_pairs(study)) == 1


def test_the_import_marks_a_records_query_gold():
    study = make_study(feedback_kinds=["ranking"])
    record = {"id": "g", "prompt": "2+2?", "responses": ["4", "5", "22"], "gold": {"ranking": [[0], [2, 1]]}}
    items_import(study=study, lines=jsonl([record, {"id": "r", "prompt": "3+3?", "responses": ["6", "7", "33"]}]))
    gold = Query.objects.get(study=study, prompt__external_id="g")
    assert gold.is_gold and gold.gold_answer == {"ranking": [[0], [2, 1]]}
    assert not Query.objects.get(study=study, prompt__external_id="r").is_gold


@pytest.mark.parametrize(
    "record, field",
    [
        ({"responses": ["4", "5"], "gold": {"choice": "left"}}, "gold.choice"),
        ({"responses": ["4", "5", "22"], "gold": {"choice": "a"}}, "gold"),  # three pairwise queries: which one?
        ({"responses": ["4", "5"], "gold": "a"}, "gold"),
    ],
)
def test_an_import_with_a_bad_gold_answer_stores_nothing_and_names_the_field(record, field):
    study = make_study()
    lines = jsonl([{"id": "ok", "prompt": "1+1?", "responses": ["2", "3"]}, {"id": "g", "prompt": "2+2?", **record}])
    with pytest.raises(InvalidInput) as caught:
        items_import(study=study, lines=lines)
    # Errors found while parsing are listed per line (no one field); the message names the line and field.
    assert f"line 2, field {field}" in caught.value.message or (caught.value.field == field and "line 2" in caught.value.message)
    assert not Query.objects.filter(study=study).exists()


def test_a_rounds_selection_never_takes_a_gold_query(queued_jobs):
    from annotate.models import Round
    from annotate.services.rounds import round_start

    study, _ = gold_study(n_gold=2, n_real=3, round_size=10)
    first = round_start(study=study, by=study.created_by)
    queued_jobs.run_all()
    chosen = Round.objects.get(pk=first.pk)
    assert chosen.selected == 3
    assert set(Query.objects.filter(study=study, is_gold=True).values_list("round", flat=True)) == {0}


def test_qualification_is_judged_on_the_first_n_gold_answers_only():
    study, worker = gold_study(n_gold=6, n_real=2, qualification_items=2, qualification_pass=1.0, gold_rate=1.0)
    qualify(study, worker, ["a", "a"])
    qualify(study, worker, ["b", "b", "b"])  # later gold answers, all wrong: measured, not a second exam
    assert assignment_next(study=study, annotator=worker).query.is_gold


def every_label_read(study) -> dict:
    """What each read of the study's labels gives, in a form two calls can be compared by."""
    from annotate.selectors import labels
    from annotate.selectors.aggregate import AGGREGATES, pair_labels
    from annotate.selectors.agreement import query_agreement, study_agreement
    from annotate.selectors.flags import study_flags
    from annotate.selectors.reviews import queries_to_review
    from annotate.selectors.training_data import ranking_examples, rating_examples, span_examples
    from annotate.selectors.training_readiness import study_readiness
    from annotate.services.exports import EXPORT_FORMATS

    def ids(queryset):
        return list(queryset.values_list("pk", flat=True))

    reads = {
        "pairwise_votes": ids(labels.pairwise_votes(study)),
        "rankings": ids(labels.rankings(study)),
        "critiques": ids(labels.critiques(study)),
        "ratings": ids(labels.ratings(study)),
        "annotations": ids(labels.annotations_with_parts(study)),
        "annotations with superseded": ids(labels.annotations_with_parts(study, superseded=True)),
        "agreement": study_agreement(study, min_shared=1),
        "query agreement": query_agreement(study),
        "aggregates": {method: pair_labels(study, method) for method in AGGREGATES},
        "flags": study_flags(study),
        "queries to review": ids(queries_to_review(study)),
        "readiness": study_readiness(study),
        "training": (preference_pairs(study), ranking_examples(study), span_examples(study), rating_examples(study)),
    }
    for format in EXPORT_FORMATS:
        export = export_build(study=study, format=format)
        reads[f"{format} export"] = (list(export.rows), export.counts)
    return reads


def test_answers_to_a_gold_query_change_no_read_of_the_studys_labels():
    """Every read that models.feedback.study_label / study_data_query serve gives the same with a
    gold query answered in every way (choice, ranking, spans, critique, ratings, a correction) as without."""
    from annotate.models import CritiquePart, SpanPart

    first, second = UserFactory(), UserFactory()
    study = make_study(annotators=[first, second])
    make_items(study, n_prompts=2)
    gold, real = Query.objects.filter(study=study).order_by("id")
    query_mark_gold(query=gold, answer={"choice": "a"})
    Query.objects.filter(study=study).update(asks=["pairwise", "spans", "critique", "ratings"])

    def answer_fully(query, annotator, choice, supersedes=None):
        responses = [qr.response for qr in query.query_responses.order_by("position")]
        ratings = [(response, "helpfulness", value) for response, value in zip(responses, (5, 1), strict=True)]
        ranking = [[r.pk] for r in responses]
        annotation = make_answer(query, annotator, choice=choice, ranking=ranking, ratings=ratings, supersedes=supersedes)
        SpanPart.objects.create(annotation=annotation, response=responses[1], start=0, end=6, category="irrelevant")
        CritiquePart.objects.create(annotation=annotation, response=responses[1], critique="Off topic.", revision="Better.")
        return annotation

    for annotator, choice in ((first, "a"), (second, "b")):
        answer_fully(real, annotator, choice)
    before = every_label_read(study)
    assert before["pairwise_votes"] and before["spans export"][0]  # the reads see the real answers

    for annotator, choice in ((first, "b"), (second, "tie")):
        answer_fully(gold, annotator, choice, supersedes=answer_fully(gold, annotator, "a"))  # a corrected answer too
    assert Annotation.objects.filter(query=gold).count() == 4
    after = every_label_read(study)
    for name, read in before.items():
        assert after[name] == read, name
