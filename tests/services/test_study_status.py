"""A study's status: paused serves nothing new, archived is read-only; the managers' actions between them."""

import pytest

from annotate.errors import Conflict
from annotate.models import Annotation, Assignment, Query, Study, TrainingRun
from annotate.services.assignments import assignment_next, assignment_skip, nothing_served_because
from annotate.services.feedback import annotation_revise, annotation_submit
from annotate.services.gold import query_mark_gold
from annotate.services.importers import study_file_import
from annotate.services.reviews import annotation_review
from annotate.services.rounds import round_resume, round_start
from annotate.services.studies import study_update
from annotate.services.study_status import NotServed, study_status_change
from annotate.services.training import training_run_start
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study_and_annotator():
    annotator = UserFactory()
    study = make_study(annotators=[annotator], overlap=1)
    make_items(study, n_prompts=4)
    return study, annotator


def answer(study, annotator, assignment=None):
    assignment = assignment or assignment_next(study=study, annotator=annotator)
    annotation, _ = annotation_submit(
        query=assignment.query, annotator=annotator, client_key=f"k-{assignment.pk}", answer={"choice": "a", "strength": 2}
    )
    return annotation


def changed(study, action: str) -> Study:
    return study_status_change(study=study, action=action)


def test_a_new_study_is_active_and_the_actions_move_it_between_the_three_states(study_and_annotator):
    study, _ = study_and_annotator
    assert study.status == "active"
    assert changed(study, "pause").status == "paused"
    assert changed(study, "resume").status == "active"
    assert changed(study, "pause").status == "paused"
    assert changed(study, "archive").status == "archived"  # from paused too
    assert changed(study, "unarchive").status == "active"
    assert changed(study, "archive").status == "archived"  # and from active
    assert Study.objects.get(pk=study.pk).status == "archived"


@pytest.mark.parametrize(
    ("status", "action", "said"),
    [
        ("active", "resume", "The study is active; only a paused study can be resumed."),
        ("active", "unarchive", "The study is active; only an archived study can be unarchived."),
        ("paused", "pause", "The study is paused; only an active study can be paused."),
        ("archived", "pause", "The study is archived; only an active study can be paused."),
        ("archived", "resume", "The study is archived; only a paused study can be resumed."),
        ("archived", "archive", "The study is archived; only an active or paused study can be archived."),
    ],
)
def test_an_action_that_cannot_be_taken_from_the_study_s_status_is_a_conflict_naming_it(
    study_and_annotator, status, action, said
):
    study, _ = study_and_annotator
    Study.objects.filter(pk=study.pk).update(status=status)
    with pytest.raises(Conflict) as refused:
        changed(study, action)
    assert refused.value.message == said and refused.value.status_code == 409
    assert Study.objects.get(pk=study.pk).status == status


def test_a_paused_study_serves_nothing_new_but_takes_the_answer_to_a_query_already_held(study_and_annotator):
    study, annotator = study_and_annotator
    held = assignment_next(study=study, annotator=annotator)
    changed(study, "pause")
    assert assignment_next(study=study, annotator=annotator) is None  # not even the one held
    newcomer = UserFactory()
    assert assignment_next(study=study, annotator=newcomer) is None
    assert nothing_served_because(study=study, annotator=annotator) == NotServed(
        "This study is paused", "This study is paused by its manager: no queries are served until it is resumed."
    )
    annotation = answer(study, annotator, held)  # held before the pause: its answer is still taken
    assert Query.objects.get(pk=held.query_id).label_count == 1 and annotation.assignment_id == held.pk
    changed(study, "resume")
    assert assignment_next(study=study, annotator=annotator) is not None


def test_a_pause_stops_the_claim_even_for_a_study_object_loaded_before_it(study_and_annotator):
    study, annotator = study_and_annotator
    Study.objects.filter(pk=study.pk).update(status="paused")  # another request paused it meanwhile
    assert study.status == "active"
    assert assignment_next(study=study, annotator=annotator) is None
    assert not Assignment.objects.filter(annotator=annotator).exists()


def test_an_archived_study_serves_nothing_and_refuses_answers_skips_and_changes(study_and_annotator):
    study, annotator = study_and_annotator
    answered = answer(study, annotator)
    held = assignment_next(study=study, annotator=annotator)
    skipped_later = held.query
    changed(study, "archive")
    assert assignment_next(study=study, annotator=annotator) is None
    assert nothing_served_because(study=study, annotator=annotator).heading == "This study is archived"
    with pytest.raises(Conflict) as refused:
        answer(study, annotator, held)
    assert refused.value.message == (
        "This study is archived: it is read-only, so answering a query is refused; a manager can unarchive it."
    )
    with pytest.raises(Conflict, match="archived: it is read-only, so skipping a query is refused"):
        assignment_skip(query=skipped_later, annotator=annotator, reason="unclear")
    answered.query.study = study
    with pytest.raises(Conflict, match="archived: it is read-only, so changing an answer is refused"):
        annotation_revise(annotation=answered, annotator=annotator, client_key="change", answer={"choice": "b", "strength": 1})
    assert Annotation.objects.filter(annotator=annotator).count() == 1
    assert Assignment.objects.get(pk=held.pk).status == "active"
    held.query.study = changed(study, "unarchive")  # as a request loads it
    assert answer(study, annotator, held).query_id == held.query_id  # still held: taken once unarchived


def test_an_archived_study_refuses_imports_training_settings_reviews_gold_and_rounds(study_and_annotator):
    study, annotator = study_and_annotator
    annotation = answer(study, annotator)
    query = Query.objects.filter(study=study).first()
    changed(study, "archive")
    annotation = Annotation.objects.select_related("query__study").get(pk=annotation.pk)  # as a request loads it
    queries = Query.objects.filter(study=study).count()
    attempts = {
        "importing": lambda: study_file_import(study=study, format="jsonl", file=[b'{"prompt": "Hi", "responses": ["a", "b"]}']),
        "training": lambda: training_run_start(study=study, requested_by=study.created_by, kind="reward"),
        "changing its settings": lambda: study_update(study=study, name="Renamed"),
        "reviewing answers": lambda: annotation_review(annotation=annotation, reviewer=study.created_by, verdict="rejected"),
        "marking gold questions": lambda: query_mark_gold(query=query, answer={"choice": "a"}),
        "starting a round": lambda: round_start(study=study, by=study.created_by),
        "resuming the round loop": lambda: round_resume(study=study),
    }
    for doing, attempt in attempts.items():
        with pytest.raises(Conflict) as refused:
            attempt()
        assert f"archived: it is read-only, so {doing} is refused" in refused.value.message
    saved = Study.objects.get(pk=study.pk)
    assert (saved.name, saved.loop_status, Query.objects.filter(study=study).count()) == ("Study", "off", queries)
    assert not TrainingRun.objects.exists() and not Query.objects.filter(is_gold=True).exists()
    assert Annotation.objects.get(pk=annotation.pk).rejected_by_id is None


def test_archiving_pauses_a_running_round_loop_and_unarchiving_leaves_it_paused(study_and_annotator, queued_jobs):
    study, _ = study_and_annotator
    round_start(study=study, by=study.created_by)
    assert changed(study, "archive").loop_status == "paused"
    assert changed(study, "unarchive").loop_status == "paused"
    assert round_resume(study=study).loop_status == "running"


def test_a_paused_study_still_takes_imports_and_setting_changes(study_and_annotator):
    study, _ = study_and_annotator
    changed(study, "pause")
    result = study_file_import(study=study, format="jsonl", file=[b'{"prompt": "Hi", "responses": ["a", "b"]}'])
    assert result.queries_created == 1
    assert study_update(study=study, name="Renamed").name == "Renamed"


def test_a_change_to_a_study_loaded_before_another_request_archived_it_is_refused(study_and_annotator):
    """A request loads the study, another archives it, then the first stores its change: the status is read again."""
    study, annotator = study_and_annotator
    held = assignment_next(study=study, annotator=annotator)
    query = Query.objects.select_related("study").get(pk=held.query_id)  # as the request loads it
    changed(Study.objects.get(pk=study.pk), "archive")  # another request, meanwhile
    assert query.study.status == "active"
    with pytest.raises(Conflict, match="so answering a query is refused"):
        annotation_submit(query=query, annotator=annotator, client_key="k", answer={"choice": "a", "strength": 2})
    with pytest.raises(Conflict, match="so changing its settings is refused"):
        study_update(study=query.study, name="Renamed")
    with pytest.raises(Conflict, match="so importing is refused"):
        study_file_import(study=query.study, format="jsonl", file=[b'{"prompt": "Hi", "responses": ["a", "b"]}'])
    with pytest.raises(Conflict, match="so importing is refused"):
        study_file_import(study=query.study, format="trl", file=b'{"chosen": "a", "rejected": "b"}\n')
    assert not Annotation.objects.exists() and Study.objects.get(pk=study.pk).name == "Study"
    assert Query.objects.filter(study=study).count() == 4


@pytest.mark.parametrize("format", ["fgrlhf", "trl", "labelstudio", "argilla"])
def test_a_labelled_import_into_a_study_archived_since_it_was_loaded_is_refused(study_and_annotator, format):
    study, _ = study_and_annotator
    changed(Study.objects.get(pk=study.pk), "archive")  # another request, meanwhile
    assert study.status == "active"
    with pytest.raises(Conflict, match="so importing is refused"):
        study_file_import(study=study, format=format, file=[b"[{}]" if format == "fgrlhf" else b"[]"])


def test_a_change_that_locked_the_study_row_does_not_read_its_status_again(study_and_annotator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    study, _ = study_and_annotator
    changed(study, "archive")
    with CaptureQueriesContext(connection) as captured, pytest.raises(Conflict):
        round_resume(study=study)
    assert [q["sql"] for q in captured if "SELECT status FROM annotate_study" in q["sql"]] == []
