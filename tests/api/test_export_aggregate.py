"""The trl export with `aggregate`: one row per pairwise query from all its votes, by majority,
Dawid-Skene or Bradley-Terry with reliabilities; and its bad input."""

import json

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotate.selectors.labels import annotator_pseudonym
from tests.factories import UserFactory, make_answer, make_items, make_study

pytestmark = pytest.mark.django_db


def export(study, **params):
    client = APIClient()
    client.force_authenticate(study.created_by)
    reply = client.get(f"/api/v1/studies/{study.pk}/export/", {"format": "trl", **params})
    rows = (
        [json.loads(line) for line in b"".join(reply.streaming_content).decode().splitlines()]
        if reply.status_code == 200
        else None
    )
    return reply, rows


def texts(query) -> tuple[str, str]:
    first, second = query.ordered_responses()
    return first.text, second.text


def test_majority_gives_one_row_per_query_and_counts_ties_and_both_bad():
    people = [UserFactory(username=name) for name in ("ann", "ben", "cat")]
    study = make_study(annotators=people)
    make_items(study, n_prompts=3)
    q1, q2, q3 = study.queries.order_by("id")
    for query, choices in ((q1, "aab"), (q2, "ab"), (q3, ["b", "b", "both_bad"])):
        for person, choice in zip(people, choices, strict=False):
            make_answer(query, person, choice=choice)
    reply, rows = export(study, aggregate="majority")
    assert reply["X-Preflab-Rows"] == "2"
    assert reply["X-Preflab-Skipped-Ties"] == "1"  # q2: one a, one b
    assert reply["X-Preflab-Skipped-Both-Bad"] == "1"
    first, second = rows
    assert (first["chosen"][0]["content"], first["rejected"][0]["content"]) == texts(q1)
    assert (second["chosen"][0]["content"], second["rejected"][0]["content"]) == texts(q3)[::-1]
    assert first["confidence"] == pytest.approx(2 / 3)
    assert (first["votes"], second["votes"]) == (3, 2)
    assert first["annotators"] == sorted(annotator_pseudonym(p.pk) for p in people)
    assert (first["aggregate"], first["source"], first["margin"], first["query_id"]) == ("majority", "pairwise", 0.0, q1.pk)


def test_dawid_skene_trusts_reliable_annotators_where_a_majority_of_careless_ones_outvotes_them():
    reliable = [UserFactory(username=f"good{i}") for i in range(2)]
    careless = [UserFactory(username=f"coin{i}") for i in range(3)]
    study = make_study(annotators=reliable + careless)
    make_items(study, n_prompts=40)
    queries = list(study.queries.order_by("id"))
    rng = np.random.default_rng(0)
    truth = {q.pk: "ab"[i % 2] for i, q in enumerate(queries)}
    outvoted = queries[0].pk  # all three careless annotators give the wrong answer here
    for query in queries:
        for person in reliable:
            make_answer(query, person, choice=truth[query.pk])
        for person in careless:
            wrong = "b" if truth[query.pk] == "a" else "a"
            make_answer(query, person, choice=wrong if query.pk == outvoted else str(rng.choice(["a", "b", "tie"])))
    by_query = {
        method: {row["query_id"]: row for row in export(study, aggregate=method)[1]} for method in ("majority", "dawid_skene")
    }
    first, second = texts(queries[0])
    assert by_query["majority"][outvoted]["chosen"][0]["content"] == second
    assert by_query["dawid_skene"][outvoted]["chosen"][0]["content"] == first
    assert set(by_query["dawid_skene"]) == set(truth)  # every query decided, none a tie
    for query in queries:
        row = by_query["dawid_skene"][query.pk]
        assert row["chosen"][0]["content"] == texts(query)[0 if truth[query.pk] == "a" else 1]


def test_bt_reliability_orders_a_split_pair_from_the_other_pairs_of_its_prompt():
    ann, ben = UserFactory(username="ann"), UserFactory(username="ben")
    study = make_study(annotators=[ann, ben])
    make_items(study, n_prompts=1, n_responses=3)
    by_pair = {tuple(r.index for r in q.ordered_responses()): q for q in study.queries.all()}
    make_answer(by_pair[(0, 1)], ann, choice="a")
    make_answer(by_pair[(0, 1)], ben, choice="b")  # split: majority calls it a tie
    for person in (ann, ben):
        make_answer(by_pair[(0, 2)], person, choice="a")  # 0 beats 2
        make_answer(by_pair[(1, 2)], person, choice="b")  # 2 beats 1
    majority_reply, _ = export(study, aggregate="majority")
    assert majority_reply["X-Preflab-Skipped-Ties"] == "1"
    reply, rows = export(study, aggregate="bt_reliability")
    assert reply["X-Preflab-Rows"] == "3"
    split = next(row for row in rows if row["query_id"] == by_pair[(0, 1)].pk)
    assert (split["chosen"][0]["content"], split["rejected"][0]["content"]) == texts(by_pair[(0, 1)])
    assert 0.5 < split["confidence"] < 1.0


@pytest.mark.parametrize(
    ("params", "detail", "field"),
    [
        ({"aggregate": "median"}, "Unknown aggregate 'median'; use one of majority, dawid_skene, bt_reliability.", "aggregate"),
        ({"aggregate": "majority", "format": "kto"}, "aggregate applies to the trl format, not kto.", "aggregate"),
        (
            {"aggregate": "majority", "sources": "ranking"},
            "aggregate combines pairwise votes only; use sources=pairwise or leave sources out.",
            "sources",
        ),
    ],
)
def test_a_bad_aggregate_request_is_refused_naming_the_field(params, detail, field):
    study = make_study()
    reply, _ = export(study, **params)
    assert reply.status_code == 400
    assert reply.json() == {"detail": detail, "field": field}
