"""The hand-written claim and check statements and the `open_queries_for` queryset state the same rule."""

import random
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from annotate.models import Assignment, Query
from annotate.services.assignments import assign, assignment_next, claim_query, open_queries_for
from annotate.services.studies import membership_add
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("seed", range(6))
def test_the_claim_picks_the_first_open_query_the_queryset_lists(seed):
    rng = random.Random(seed)
    people = [UserFactory() for _ in range(4)]
    study = make_study(annotators=people, overlap=rng.choice([1, 2, 3]))
    make_items(study, n_prompts=6, n_responses=3)
    now = timezone.now()
    queries = list(Query.objects.filter(study=study))
    for query in queries:
        Query.objects.filter(pk=query.pk).update(
            label_count=rng.randint(0, study.overlap), priority=rng.randint(0, 2), is_gold=rng.random() < 0.25
        )
        for person in rng.sample(people, rng.randint(0, 3)):
            status = rng.choice(["active", "submitted", "skipped", "expired"])
            expires = now + timedelta(minutes=rng.choice([-5, 5]))
            Assignment.objects.create(query=query, annotator=person, status=status, display_order=[0, 1], expires_at=expires)
    for person in people:
        expected = open_queries_for(study, person).order_by("-priority", "id").values_list("pk", flat=True).first()
        with transaction.atomic():
            claimed = claim_query(study=study, annotator=person, now=timezone.now())
            assert (claimed[0].pk if claimed else None) == expected


@pytest.mark.parametrize("seed", range(4))
def test_the_check_before_assigning_agrees_with_the_queryset_for_every_query(seed):
    """`assign` re-checks one locked query with its own form of the rule; it must say what the queryset says."""
    rng = random.Random(seed)
    people = [UserFactory() for _ in range(3)]
    study = make_study(annotators=people, overlap=rng.choice([1, 2]))
    make_items(study, n_prompts=5, n_responses=3)
    now = timezone.now()
    queries = list(Query.objects.filter(study=study))
    for query in queries:
        # Gold queries (services.gold) are served by their own claim, never from the pool.
        Query.objects.filter(pk=query.pk).update(label_count=rng.randint(0, study.overlap), is_gold=rng.random() < 0.25)
        for person in rng.sample(people, rng.randint(0, 2)):
            status = rng.choice(["active", "submitted", "skipped", "expired"])
            expires = now + timedelta(minutes=rng.choice([-5, 5]))
            Assignment.objects.create(query=query, annotator=person, status=status, display_order=[0, 1], expires_at=expires)
    for person in people:
        open_ids = set(open_queries_for(study, person).values_list("pk", flat=True))
        for query in Query.objects.filter(study=study):
            with transaction.atomic():
                size = len(query.ordered_responses())
                handed = assign(query=query, size=size, study=study, annotator=person, now=timezone.now())
                transaction.set_rollback(True)
            assert (handed is not None) == (query.pk in open_ids), (person.pk, query.pk)


def test_a_random_study_hands_out_its_queries_in_a_random_order_not_the_files():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    assert study.selection_strategy == "random"
    make_items(study, n_prompts=30)
    in_file_order = list(Query.objects.filter(study=study).order_by("id").values_list("id", flat=True))
    handed = []
    while (assignment := assignment_next(study=study, annotator=annotator)) is not None:
        handed.append(assignment.query_id)
        assignment.status = "skipped"
        assignment.save(update_fields=["status"])
    assert sorted(handed) == sorted(in_file_order)  # every query, once
    assert handed != in_file_order  # 1 chance in 30! of failing by luck


@pytest.mark.parametrize("seed", range(4))
def test_in_a_round_loop_the_claim_serves_only_the_current_round_as_the_queryset_says(seed):
    rng = random.Random(seed)
    people = [UserFactory() for _ in range(3)]
    study = make_study(annotators=people, overlap=rng.choice([1, 2]))
    make_items(study, n_prompts=12)
    for query in Query.objects.filter(study=study):
        Query.objects.filter(pk=query.pk).update(round=rng.choice([0, 1, 2, 3]), priority=rng.randint(0, 5))
    study.loop_status, study.current_round = "running", 2
    study.save(update_fields=["loop_status", "current_round"])
    in_round = set(Query.objects.filter(study=study, round=2).values_list("pk", flat=True))
    for person in people:
        open_ids = set(open_queries_for(study, person).values_list("pk", flat=True))
        assert open_ids <= in_round
        handed = []
        while (assignment := assignment_next(study=study, annotator=person)) is not None:
            handed.append(assignment.query_id)
            assignment.status = "skipped"
            assignment.save(update_fields=["status"])
        assert set(handed) == open_ids, "the claim and the queryset disagree"
        assert set(handed) <= in_round, "a query beyond the current round was handed out"


def test_while_the_next_round_is_selected_nothing_is_handed_out_not_even_the_unchosen_pool():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=5)
    assert assignment_next(study=study, annotator=annotator) is not None  # loop off: the whole pool is open
    study.loop_status, study.current_round = "running", 1  # round 1 is being selected: no query has round 1 yet
    study.save(update_fields=["loop_status", "current_round"])
    fresh = UserFactory()
    membership_add(study=study, username=fresh.username, role="annotator")
    assert assignment_next(study=study, annotator=fresh) is None
    assert not open_queries_for(study, fresh).exists()


def set_quota(study, quota):
    study.annotator_quota = quota
    study.save(update_fields=["annotator_quota"])


def answer_next(study, annotator):
    from annotate.services.feedback import annotation_submit

    assignment = assignment_next(study=study, annotator=annotator)
    annotation_submit(
        query=assignment.query, annotator=annotator, client_key=f"k-{assignment.pk}", answer={"choice": "a", "strength": 2}
    )
    return assignment


def test_an_annotator_who_answered_the_quota_is_served_no_more_while_others_still_are():
    from annotate.selectors.queues import annotator_progress
    from annotate.services.assignments import nothing_served_because
    from annotate.services.study_status import NotServed

    first, second = UserFactory(), UserFactory()
    study = make_study(annotators=[first, second], overlap=2)
    make_items(study, n_prompts=5)
    set_quota(study, 2)
    assert annotator_progress(study=study, annotator=first)["total"] == 2  # the quota, not the 5 open
    for _ in range(2):
        answer_next(study, first)
    assert assignment_next(study=study, annotator=first) is None
    assert nothing_served_because(study=study, annotator=first) == NotServed(
        "You reached your quota", "You reached this study's quota of 2 answered queries; thank you."
    )
    assert annotator_progress(study=study, annotator=first) == {"done": 2, "remaining": 0, "total": 2, "skipped": 0}
    assert assignment_next(study=study, annotator=second) is not None
    assert nothing_served_because(study=study, annotator=second) is None
    set_quota(study, None)  # no limit: served again
    assert assignment_next(study=study, annotator=first) is not None


def test_skipped_and_gold_queries_do_not_count_towards_the_quota():
    from annotate.services.assignments import quota_used

    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=6)
    set_quota(study, 2)
    skipped = assignment_next(study=study, annotator=annotator)
    skipped.status = "skipped"
    skipped.save(update_fields=["status"])
    gold = Query.objects.filter(study=study).exclude(pk=skipped.query_id).order_by("id").first()
    Query.objects.filter(pk=gold.pk).update(is_gold=True, gold_answer={"choice": "a"})
    study.gold_rate = 1.0  # every claim tries a gold query first
    study.save(update_fields=["gold_rate"])
    assert answer_next(study, annotator).query_id == gold.pk
    assert quota_used(study=study, annotator=annotator) == 0
    answered = [answer_next(study, annotator).query_id for _ in range(2)]
    assert gold.pk not in answered and skipped.query_id not in answered
    assert quota_used(study=study, annotator=annotator) == 2
    assert assignment_next(study=study, annotator=annotator) is None


def test_a_query_held_counts_towards_the_quota_so_a_second_claim_cannot_pass_it():
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=4)
    set_quota(study, 1)
    held = assignment_next(study=study, annotator=annotator)
    now = timezone.now()
    with transaction.atomic():  # a second claim racing the first, past the held-assignment shortcut
        assert claim_query(study=study, annotator=annotator, now=now) is None
    assert assignment_next(study=study, annotator=annotator).pk == held.pk  # the one held is still served


def test_a_quota_adds_no_statement_to_the_claim():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def statements(quota) -> int:
        annotator = UserFactory()
        study = make_study(annotators=[annotator])
        make_items(study, n_prompts=3)
        set_quota(study, quota)
        with CaptureQueriesContext(connection) as captured:
            assert assignment_next(study=study, annotator=annotator) is not None
        return len(captured)

    assert statements(5) == statements(None)


def test_an_empty_pool_is_walked_again_only_where_the_first_walk_skipped_locked_rows():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    with CaptureQueriesContext(connection) as captured:
        assert assignment_next(study=study, annotator=annotator) is None
    walks = [q for q in captured if "ORDER BY q.priority DESC, q.id LIMIT 1" in q["sql"]]
    assert len(walks) == (2 if connection.features.has_select_for_update_skip_locked else 1)
