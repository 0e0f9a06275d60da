"""Bias flags on constructed annotators: each shortcut raises its flag with the numbers behind it,
and a careful annotator raises none."""

import pytest
from django.utils import timezone

from annotate.models import Annotation, Assignment, PairwiseChoice, Query
from annotate.selectors.flags import study_flags
from annotate.selectors.studies import annotator_stats, position_bias
from annotate.services.items import items_import
from tests.factories import UserFactory, jsonl, make_answer, make_items, make_study

pytestmark = pytest.mark.django_db

SHORT = "Yes."
LONG = "Yes, and here is a longer answer that explains why in a few more words."  # 15 words
N = 12


def pair_study(*annotators):
    """N pairwise queries; the canonical first response is the longer one on odd prompts only."""
    study = make_study(annotators=annotators)
    records = [
        {"id": f"q{i}", "prompt": f"Question {i}?", "responses": [LONG, SHORT] if i % 2 else [SHORT, LONG]} for i in range(N)
    ]
    items_import(study=study, lines=jsonl(records))
    return study, list(study.queries.order_by("prompt_id"))


def answer(query, annotator, choice, *, shown=None, active_ms=60_000):
    annotation = make_answer(query, annotator, choice=choice)
    Annotation.objects.filter(pk=annotation.pk).update(active_ms=active_ms)
    PairwiseChoice.objects.filter(annotation=annotation).update(shown_choice=shown or choice)
    return annotation


def longer(query) -> str:
    first = query.query_responses.get(position=0).response.text
    return "a" if first == LONG else "b"


def by_name(flags, name):
    return next(row for row in flags["annotators"] if row["annotator"] == name)


@pytest.fixture
def annotated():
    careful, clicker, always_a, longer_picker = (UserFactory(username=n) for n in ("careful", "clicker", "always-a", "longer"))
    study, queries = pair_study(careful, clicker, always_a, longer_picker)
    fast = {}
    for i, query in enumerate(queries):
        answer(query, careful, "a" if i < N // 2 else "b")  # 6 of 12 shown first, 6 of 12 longer
        fast[i] = answer(query, clicker, "a" if i % 3 else "b", active_ms=300 if i < 4 else 60_000)
        answer(query, always_a, "a" if i < N // 2 else "b", shown="a")  # pressed 1 every time; the display order varied
        answer(query, longer_picker, longer(query))
    return study, fast


def test_a_careful_annotator_raises_no_flag(annotated):
    study, _ = annotated
    careful = by_name(study_flags(study), "careful")
    assert careful["raised"] == []
    assert careful["flags"]["position"]["k"] == 6 and careful["flags"]["position"]["p_value"] == pytest.approx(1.0)


def test_answers_under_the_reading_floor_are_too_fast(annotated):
    study, fast = annotated
    flags = study_flags(study)
    clicker = by_name(flags, "clicker")["flags"]["too_fast"]
    # Both responses hold 1 + 15 words: a floor of 16 · 60 ms = 960 ms, so 300 ms is too fast and 60 s is not.
    assert (clicker["n"], clicker["k"], clicker["rate"], clicker["raised"]) == (12, 4, 4 / 12, True)
    assert {a for a, found in flags["annotations"].items() if "too_fast" in found} == {fast[i].pk for i in range(4)}


def test_an_annotator_who_always_presses_the_first_key_has_position_bias(annotated):
    study, _ = annotated
    position = by_name(study_flags(study), "always-a")["flags"]["position"]
    # 12 of 12 at ½: outcomes as unlikely are 0 and 12, so p = 2 / 2¹².
    assert (position["n"], position["k"], position["expected_rate"]) == (12, 12, 0.5)
    assert position["p_value"] == pytest.approx(2 / 4096)
    assert position["raised"] is True


def test_an_annotator_who_always_picks_the_longer_response_has_length_bias(annotated):
    study, _ = annotated
    flags = study_flags(study)
    length = by_name(flags, "longer")["flags"]["length"]
    # The others pick the longer one 6 + 6 + 6 of 36 times (½); 12 of 12 at ½ is p = 2 / 2¹².
    assert (length["n"], length["k"], length["study_rate"]) == (12, 12, 0.5)
    assert length["p_value"] == pytest.approx(2 / 4096)
    assert by_name(flags, "longer")["raised"] == ["length"]
    # Every answer of an annotator with length bias is flagged with it.
    assert sum("length" in found for found in flags["annotations"].values()) == 12


def test_an_annotator_who_gives_every_response_the_same_rating_is_straight_lined():
    steady, thoughtful = UserFactory(username="steady"), UserFactory(username="thoughtful")
    study = make_study(annotators=[steady, thoughtful])
    make_items(study, n_prompts=6)
    for i, query in enumerate(study.queries.order_by("id")):
        first, second = (qr.response for qr in query.query_responses.order_by("position"))
        make_answer(
            query, steady, ratings=[(first, "helpful", 4), (second, "helpful", 4), (first, "honest", 4), (second, "honest", 4)]
        )
        make_answer(
            query,
            thoughtful,
            ratings=[(first, "helpful", 2 + i % 3), (second, "helpful", 5), (first, "honest", 3), (second, "honest", 4)],
        )
    flags = study_flags(study)
    line = by_name(flags, "steady")["flags"]["straight_line"]
    assert (line["n"], line["k"], line["rate"], line["raised"]) == (6, 6, 1.0, True)
    assert by_name(flags, "thoughtful")["raised"] == []


def test_votes_on_an_intransitive_cycle_within_a_prompt_are_flagged():
    cycler, orderly = UserFactory(username="cycler"), UserFactory(username="orderly")
    study = make_study(annotators=[cycler, orderly])
    make_items(study, n_prompts=1, n_responses=3)
    r0, r1, r2 = study.prompts.get().responses.order_by("id")
    cycle = {(r0.pk, r1.pk), (r1.pk, r2.pk), (r2.pk, r0.pk)}  # r0 > r1 > r2 > r0
    order = {(r0.pk, r1.pk), (r1.pk, r2.pk), (r0.pk, r2.pk)}
    cycled = []
    for query in study.queries.order_by("id"):
        x, y = (qr.response_id for qr in query.query_responses.order_by("position"))
        cycled.append(make_answer(query, cycler, choice="a" if (x, y) in cycle else "b").pk)
        make_answer(query, orderly, choice="a" if (x, y) in order else "b")
    flags = study_flags(study)
    assert by_name(flags, "cycler")["flags"]["cycle"] == {"n": 3, "k": 3, "raised": True}
    assert {a for a, found in flags["annotations"].items() if "cycle" in found} == set(cycled)
    assert by_name(flags, "orderly")["flags"]["cycle"]["raised"] is False


def test_a_superseded_answer_is_not_flagged(annotated):
    study, fast = annotated
    correction = make_answer(fast[0].query, fast[0].annotator, choice="a", supersedes=fast[0])
    Annotation.objects.filter(pk=correction.pk).update(active_ms=60_000)
    flagged = study_flags(study)["annotations"]
    assert fast[0].pk not in flagged and correction.pk not in flagged


def test_answers_to_gold_queries_raise_no_flag_and_are_not_counted(annotated):
    study, fast = annotated
    before = by_name(study_flags(study), "careful")["flags"]
    items_import(study=study, lines=jsonl([{"id": "gold", "prompt": "Gold?", "responses": [LONG, SHORT]}]))
    gold = study.queries.get(prompt__external_id="gold")
    Query.objects.filter(pk=gold.pk).update(is_gold=True, gold_answer={"choice": "a"})
    # Too fast, first shown and longer: each would count towards a flag if gold answers were read.
    rushed = answer(gold, UserFactory(username="careful"), "a", shown="a", active_ms=100)
    flags = study_flags(study)
    careful = by_name(flags, "careful")
    assert rushed.pk not in flags["annotations"]
    assert careful["answers"] == 12
    assert careful["flags"]["too_fast"]["k"] == 0
    assert careful["flags"]["position"] == before["position"]
    assert careful["flags"]["length"]["n"] == before["length"]["n"]


def test_the_dashboards_position_bias_leaves_out_answers_to_gold_queries(annotated):
    study, fast = annotated
    items_import(study=study, lines=jsonl([{"id": "gold", "prompt": "Gold?", "responses": [LONG, SHORT]}]))
    gold = study.queries.get(prompt__external_id="gold")
    Query.objects.filter(pk=gold.pk).update(is_gold=True, gold_answer={"choice": "a"})
    careful = UserFactory(username="careful-gold")
    real = study.queries.exclude(pk=gold.pk).first()
    for query in (real, gold):  # the same on-screen answer to a real and to a gold query
        annotation = answer(query, careful, "a", shown="a")
        assignment = Assignment.objects.create(
            query=query, annotator=careful, status="done", display_order=[0, 1], expires_at=timezone.now()
        )
        Annotation.objects.filter(pk=annotation.pk).update(assignment=assignment)
    bias = position_bias(study)
    assert (bias["sided"], bias["left"]) == (1, 1)
    row = next(row for row in annotator_stats(study) if row["username"] == "careful-gold")
    assert (row["labels"], row["sided"], row["left"]) == (2, 1, 1)  # both answers count as work done
