"""Study settings checked by the service: the quota per annotator against what the overlap needs."""

import pytest

from annotate.errors import InvalidInput
from annotate.models import Query, Study
from annotate.services.studies import membership_add, study_update
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    """Two annotators, six pairwise queries wanted twice each: 12 labels, so a quota of 6 or more."""
    study = make_study(annotators=[UserFactory(), UserFactory()], researchers=[UserFactory()], overlap=2)
    make_items(study, n_prompts=6)
    return study


def test_a_quota_that_covers_the_overlap_is_saved_and_zero_or_none_means_no_limit(study):
    assert study_update(study=study, annotator_quota=6).annotator_quota == 6
    assert study_update(study=study, annotator_quota=0).annotator_quota is None
    assert study_update(study=study, annotator_quota=6).annotator_quota == 6
    assert study_update(study=study, annotator_quota=None).annotator_quota is None


def test_a_quota_below_what_the_overlap_needs_is_refused_naming_the_field_and_giving_the_numbers(study):
    with pytest.raises(InvalidInput) as refused:
        study_update(study=study, annotator_quota=5, name="Renamed")
    assert refused.value.field == "annotator_quota"
    assert refused.value.message == (
        "annotator_quota 5 is below what overlap needs: 2 annotators × 5 = 10 answers, but 6 queries × overlap 2 "
        "= 12 labels are wanted; raise it to at least 6, or leave it empty for no limit."
    )
    saved = Study.objects.get(pk=study.pk)
    assert (saved.annotator_quota, saved.name) == (None, "Study")


def test_raising_the_overlap_past_what_the_quota_covers_is_refused_naming_the_quota(study):
    study_update(study=study, annotator_quota=6)
    with pytest.raises(InvalidInput, match=r"annotator_quota 6 is below what overlap needs: .* 6 queries × overlap 3 = 18"):
        study_update(study=study, overlap=3)
    assert Study.objects.get(pk=study.pk).overlap == 2
    membership_add(study=study, username=UserFactory().username, role="annotator")  # a third annotator: 18 answers
    assert study_update(study=study, overlap=3).overlap == 3


def test_only_annotators_count_and_gold_queries_need_no_overlap(study):
    Query.objects.filter(pk__in=Query.objects.filter(study=study).values("pk")[:2]).update(is_gold=True)
    assert study_update(study=study, annotator_quota=4).annotator_quota == 4  # 2 × 4 covers 4 queries × 2
    lone = make_study(overlap=1)  # its manager may annotate but is not counted: no annotators yet
    make_items(lone, n_prompts=1)
    with pytest.raises(
        InvalidInput, match="0 annotators × 3 = 0 answers, but 1 query × overlap 1 = 1 label is wanted"
    ) as refused:
        study_update(study=lone, annotator_quota=3)
    assert "add annotators to the study first" in refused.value.message


@pytest.mark.parametrize("value", [-1, 2**31, "5", 2.5, True])
def test_a_negative_or_malformed_quota_is_refused_naming_the_field(study, value):
    with pytest.raises(InvalidInput) as refused:
        study_update(study=study, annotator_quota=value)
    assert refused.value.field == "annotator_quota"
    assert refused.value.message.startswith("annotator_quota must be a whole number from 0 to 2147483647")


def test_an_update_writes_only_what_it_changes_so_a_stale_study_keeps_what_the_loop_moved(study):
    stale = Study.objects.get(pk=study.pk)
    Study.objects.filter(pk=study.pk).update(loop_status="running", current_round=3)  # the round loop, meanwhile
    study_update(study=stale)  # an empty change (a PATCH with no field)
    study_update(study=stale, name="Renamed")
    fresh = Study.objects.get(pk=study.pk)
    assert (fresh.name, fresh.loop_status, fresh.current_round) == ("Renamed", "running", 3)
