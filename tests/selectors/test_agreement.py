"""A study's agreement figures, read from stored labels and checked against hand-computed tables."""

import json

import krippendorff
import numpy as np
import pytest

from annotate.models import Annotation, Query
from annotate.selectors.agreement import query_agreement, study_agreement
from tests.factories import UserFactory, make_answer, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return {name: UserFactory(username=name) for name in ("ann", "ben", "cat")}


def pairwise_study(people, n_prompts: int):
    study = make_study(annotators=people.values())
    make_items(study, n_prompts=n_prompts)
    return study, list(study.queries.order_by("id"))


# Canonical choices per query, one column per annotator (ann, ben, cat).
CHOICES = [("a", "a", "a"), ("a", "b", "a"), ("b", "b", "b"), ("tie", "tie", "both_bad")]


def test_pairwise_choices_give_the_hand_computed_study_figures(people):
    study, queries = pairwise_study(people, n_prompts=4)
    for query, row in zip(queries, CHOICES, strict=True):
        for user, choice in zip(people.values(), row, strict=True):
            make_answer(query, user, choice=choice)
    figures = study_agreement(study, min_shared=4)["kinds"]["choices"]
    # Per query, the share of agreeing pairs: 1, 1/3, 1, 1/3.
    assert figures["raw_agreement"] == {"value": pytest.approx(2 / 3), "items": 4, "ratings": 12, "reason": ""}
    # Pooled shares a 5/12, b 4/12, tie 2/12, both_bad 1/12: P̄e = 46/144, κ = (96 − 46) / (144 − 46).
    assert figures["fleiss_kappa"]["value"] == pytest.approx(50 / 98)
    codes = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}
    matrix = np.array([[codes[row[j]] for row in CHOICES] for j in range(3)], dtype=float)
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert figures["krippendorff_alpha"]["value"] == pytest.approx(expected)
    assert (figures["level"], figures["annotators"], figures["units"]) == ("nominal", 3, 4)


def test_each_annotator_gets_agreement_with_the_others_and_kappa_against_each_with_enough_shared_items(people):
    study, queries = pairwise_study(people, n_prompts=5)
    for query, row in zip(queries[:4], CHOICES, strict=True):
        for user, choice in zip(people.values(), row, strict=True):
            make_answer(query, user, choice=choice)
    make_answer(queries[4], people["ann"], choice="a")
    make_answer(queries[4], people["ben"], choice="a")  # ann and ben share 5 queries; cat shares 4 with each
    ann = study_agreement(study, min_shared=5)["kinds"]["choices"]["per_annotator"][0]
    assert (ann["annotator"], ann["labels"]) == ("ann", 5)
    # ann matches 2/2, 1/2, 2/2, 1/2 and 1/1 of the other labels on her queries.
    assert ann["agreement"] == {"value": pytest.approx(7 / 9), "items": 5, "ratings": 14, "reason": ""}
    # ann (a a b tie a) against ben (a b b tie a): p_o = 4/5; p_e = 3/5·2/5 + 1/5·2/5 + 1/5·1/5 = 9/25.
    [kappa] = ann["cohen_kappa"]
    assert kappa["with"] == "ben"
    assert kappa["value"] == pytest.approx((4 / 5 - 9 / 25) / (1 - 9 / 25))
    assert kappa["items"] == 5
    everyone = study_agreement(study, min_shared=4)["kinds"]["choices"]
    assert [k["with"] for k in everyone["per_annotator"][0]["cohen_kappa"]] == ["ben", "cat"]
    assert [(k["first"], k["second"]) for k in everyone["cohen_kappa"]] == [("ann", "ben"), ("ann", "cat"), ("ben", "cat")]


def test_a_superseded_answer_is_left_out_and_its_correction_counts(people):
    study, queries = pairwise_study(people, n_prompts=1)
    make_answer(queries[0], people["ben"], choice="a")
    correction = make_answer(queries[0], people["ann"], choice="a")
    # Stored after the correction, so a read that kept it would see ann's last word as "b".
    old = make_answer(queries[0], people["ann"], choice="b")
    Annotation.objects.filter(pk=correction.pk).update(supersedes=old)
    figures = study_agreement(study)["kinds"]["choices"]
    assert figures["raw_agreement"]["value"] == 1.0
    assert figures["raw_agreement"]["ratings"] == 2


def test_ratings_are_ordinal_units_per_response_and_aspect(people):
    study = make_study(annotators=people.values(), feedback_kinds=["single", "ratings"])
    make_items(study, n_prompts=2)
    first, second = list(study.queries.order_by("id"))[:2]
    # Units: (first, clarity), (first, truth), (second, clarity), (second, truth).
    values = {"ann": [5, 4, 2, 1], "ben": [4, 4, 2, 2], "cat": [5, 3, 1, 1]}
    for name, (c1, t1, c2, t2) in values.items():
        for query, clarity, truth in ((first, c1, t1), (second, c2, t2)):
            [response] = query.ordered_responses()
            make_answer(query, people[name], ratings=[(response, "clarity", clarity), (response, "truth", truth)])
    figures = study_agreement(study)["kinds"]["ratings"]
    matrix = np.array([values[name] for name in ("ann", "ben", "cat")], dtype=float)
    order = figures["krippendorff_alpha"]
    assert figures["level"] == "ordinal"
    assert order["value"] == pytest.approx(krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal"))
    assert order["value"] != pytest.approx(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))
    assert (order["items"], order["ratings"]) == (4, 12)


def test_rankings_are_compared_pair_by_pair_and_cannot_rank_answers_are_left_out(people):
    study = make_study(annotators=people.values(), feedback_kinds=["ranking"])
    make_items(study, n_prompts=1, n_responses=3)
    [query] = study.queries.all()
    r1, r2, r3 = (r.pk for r in query.ordered_responses())
    make_answer(query, people["ann"], ranking=[[r1], [r2], [r3]])
    make_answer(query, people["ben"], ranking=[[r1], [r2, r3]])
    make_answer(query, people["cat"], cannot_rank="Both are off topic.")
    figures = study_agreement(study)["kinds"]["rankings"]
    # (r1, r2) ahead/ahead, (r1, r3) ahead/ahead, (r2, r3) ahead/tied.
    assert figures["raw_agreement"] == {"value": pytest.approx(2 / 3), "items": 3, "ratings": 6, "reason": ""}
    assert figures["annotators"] == 2


def test_a_study_with_one_annotator_gets_reasons_instead_of_figures(people):
    study, queries = pairwise_study(people, n_prompts=2)
    for query in queries:
        make_answer(query, people["ann"], choice="a")
    result = study_agreement(study)
    json.dumps(result)  # the API sends it as it is
    figures = result["kinds"]["choices"]
    for name in ("raw_agreement", "fleiss_kappa", "krippendorff_alpha"):
        assert figures[name] == {"value": None, "items": 0, "ratings": 0, "reason": "no item was labelled by two annotators"}
    assert figures["per_annotator"][0]["agreement"]["reason"] == "no other annotator labelled the same items"
    assert set(result["kinds"]) == {"choices"}


def test_answers_to_gold_queries_are_left_out_of_every_agreement_figure(people):
    study, queries = pairwise_study(people, n_prompts=5)
    for query, row in zip(queries[:4], CHOICES, strict=True):
        for user, choice in zip(people.values(), row, strict=True):
            make_answer(query, user, choice=choice)
    # A gold query everyone answered differently: counted, it would add a fifth item and lower every figure.
    gold = queries[4]
    Query.objects.filter(pk=gold.pk).update(is_gold=True, gold_answer={"choice": "a"})
    for user, choice in zip(people.values(), ("a", "b", "tie"), strict=True):
        make_answer(gold, user, choice=choice)
    figures = study_agreement(study, min_shared=4)["kinds"]["choices"]
    assert figures["raw_agreement"] == {"value": pytest.approx(2 / 3), "items": 4, "ratings": 12, "reason": ""}
    assert figures["fleiss_kappa"]["value"] == pytest.approx(50 / 98)
    assert [row["labels"] for row in figures["per_annotator"]] == [4, 4, 4]
    assert gold.pk not in query_agreement(study)
    assert set(query_agreement(study)) == {q.pk for q in queries[:4]}


def test_gold_ratings_and_rankings_are_left_out_too(people):
    study = make_study(annotators=people.values(), feedback_kinds=["ranking", "ratings"])
    make_items(study, n_prompts=1, n_responses=3)
    [query] = study.queries.all()
    Query.objects.filter(pk=query.pk).update(is_gold=True, gold_answer={"ranking": [[0], [1], [2]]})
    r1, r2, r3 = query.ordered_responses()
    make_answer(query, people["ann"], ranking=[[r1.pk], [r2.pk], [r3.pk]], ratings=[(r1, "clarity", 5)])
    make_answer(query, people["ben"], ranking=[[r3.pk], [r2.pk], [r1.pk]], ratings=[(r1, "clarity", 1)])
    assert study_agreement(study)["kinds"] == {}
