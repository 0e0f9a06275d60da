"""Two reviewers rejecting the same answer at the same moment, each on its own PostgreSQL connection."""

import pytest
from django.db import connection

from annotate.models import Query, Review
from annotate.services.assignments import assignment_next
from annotate.services.feedback import annotation_submit
from annotate.services.reviews import annotation_review
from annotate.services.studies import membership_add
from tests.factories import UserFactory, make_items, make_study
from tests.services.test_concurrent_claims import race

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's row locks; CI runs it there"),
]


def test_a_double_rejection_counts_once():
    ana, first_reviewer, second_reviewer = UserFactory(), UserFactory(), UserFactory()
    study = make_study(annotators=[ana], overlap=1)
    for reviewer in (first_reviewer, second_reviewer):
        membership_add(study=study, username=reviewer.username, role="reviewer")
    make_items(study, n_prompts=1)
    assignment = assignment_next(study=study, annotator=ana)
    annotation, _ = annotation_submit(query=assignment.query, annotator=ana, client_key="k", answer={"choice": "tie"})

    results = race(
        [
            lambda reviewer=reviewer: annotation_review(annotation=annotation, reviewer=reviewer, verdict="rejected")
            for reviewer in (first_reviewer, second_reviewer)
        ]
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(created for _, created in results) == [False, True]
    assert Review.objects.count() == 1 and Query.objects.get(pk=annotation.query_id).label_count == 0
