"""Deleting a study removes every row under it by set-based statements, then its files, and nothing of another study."""

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from annotate.models import (
    Annotation,
    Assignment,
    CritiquePart,
    DatasetExport,
    ModelVersion,
    PairwiseChoice,
    Prompt,
    Query,
    QueryResponse,
    Response,
    Round,
    SpanPart,
    Study,
    TrainingRun,
)
from annotate.rows import insert_rows
from annotate.services.dataset_exports import exports_dir
from annotate.services.features import features_dir
from annotate.services.reviews import annotation_review
from annotate.services.studies import STUDY_MODELS, study_delete, study_row_counts
from annotate.services.training import run_dir
from tests.factories import UserFactory, make_answer, make_items, make_run, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_artifacts(settings, tmp_path):
    """A folder per test: where a rolled-back test's ids come round again (SQLite), its folders must not."""
    settings.ARTIFACTS_DIR = str(tmp_path / "artifacts")


def rows_of(study_id: int) -> dict[str, int]:
    return {model.__name__: count for model, count in study_row_counts(study_id).items()}


def fill(study, annotators, n_prompts: int) -> None:
    """Per prompt: 2 responses, a query showing both, and per annotator an assignment and a pairwise answer."""
    prompts = insert_rows(Prompt, ("study_id", "external_id", "messages"), [(study.pk, f"b{i}", []) for i in range(n_prompts)])
    responses = insert_rows(Response, ("prompt_id", "index", "text"), [(p, j, "text") for p in prompts for j in (0, 1)])
    queries = insert_rows(Query, ("study_id", "prompt_id", "key"), [(study.pk, p, f"pairwise:{p}") for p in prompts])
    insert_rows(
        QueryResponse,
        ("query_id", "response_id", "position"),
        [(q, responses[2 * k + j], j) for k, q in enumerate(queries) for j in (0, 1)],
    )
    later = timezone.now() + timezone.timedelta(hours=1)
    for user in annotators:
        assignments = insert_rows(
            Assignment,
            ("query_id", "annotator_id", "status", "display_order", "expires_at"),
            [(q, user.pk, "done", [0, 1], later) for q in queries],
        )
        annotations = insert_rows(
            Annotation,
            ("query_id", "annotator_id", "assignment_id", "client_key"),
            [(q, user.pk, a, f"s{study.pk}-{q}") for q, a in zip(queries, assignments, strict=True)],
        )
        insert_rows(
            PairwiseChoice, ("annotation_id", "choice", "shown_choice", "strength"), [(a, "a", "a", 2) for a in annotations]
        )


def add_everything_else(study, annotator, reviewer) -> None:
    """A row of each kind the bulk fill leaves out: parts, a correction, a rejection, a run, a version, a round, an export."""
    make_items(study, n_prompts=2, prefix=f"s{study.pk}-")
    query = Query.objects.filter(study=study, prompt__external_id=f"s{study.pk}-0").get()
    first, _ = query.ordered_responses()
    old = make_answer(query, annotator, choice="a", ratings=[(first, "helpfulness", 3)])
    newer = make_answer(query, annotator, choice="b", supersedes=old)
    make_answer(query, reviewer, ranking=[[first.pk], [query.ordered_responses()[1].pk]])
    SpanPart.objects.create(annotation=newer, response=first, start=0, end=3, category="error")
    CritiquePart.objects.create(annotation=newer, response=first, critique="Too short.")
    annotation_review(annotation=newer, reviewer=reviewer, verdict="rejected", note="No.")
    run = make_run(study)
    version = ModelVersion.objects.create(
        study=study, run=run, kind="reward", version=1, base_model="minilm", artifact_path=str(run_dir(run) / "model"),
        checksum="0" * 64, metrics={}, data_hash="0" * 64,
    )  # fmt: skip
    round_ = Round.objects.create(
        study=study, number=1, strategy="random", size=1, model_version=version, trained_version=version
    )
    TrainingRun.objects.filter(pk=run.pk).update(round=round_)  # the round's training step
    export = DatasetExport.objects.create(
        study=study, format="pairwise", row_count=1, checksum="0" * 64, path="", size=1, created_by=reviewer
    )
    for folder in (exports_dir(study) / str(export.pk), features_dir(study) / "v1", run_dir(run) / "model"):
        folder.mkdir(parents=True)
        (folder / "file").write_text("kept until the study goes")


def study_files(study) -> list:
    runs = TrainingRun.objects.filter(study=study)
    return [exports_dir(study), features_dir(study), *(run_dir(run) for run in runs)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the parameter limit is PostgreSQL's")
def test_a_study_of_over_70000_rows_goes_entirely_and_another_study_stays(django_capture_on_commit_callbacks):
    annotator, reviewer = UserFactory(), UserFactory()
    big = make_study(annotators=[annotator, reviewer])
    other = make_study(annotators=[annotator])
    fill(big, [annotator, reviewer], 6000)
    fill(other, [annotator], 10)
    for study in (big, other):
        add_everything_else(study, annotator, reviewer)
    assert sum(rows_of(big.pk).values()) > 70_000
    assert all(rows_of(big.pk).values()), rows_of(big.pk)  # every kind of row is there to delete
    other_rows = rows_of(other.pk)
    big_files, other_files = study_files(big), study_files(other)
    assert all(folder.is_dir() for folder in big_files + other_files)
    big_id = big.pk

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        study_delete(study=big)

    assert len(callbacks) == 1
    assert set(rows_of(big_id).values()) == {0}
    assert rows_of(other.pk) == other_rows
    assert not any(folder.exists() for folder in big_files)
    assert all(folder.is_dir() for folder in other_files)
    # The people stay, and so does what the other study's answers rest on.
    assert {annotator.pk, reviewer.pk} <= set(type(annotator).objects.values_list("pk", flat=True))


def test_files_stay_until_the_delete_commits(django_capture_on_commit_callbacks):
    annotator, reviewer = UserFactory(), UserFactory()
    study = make_study(annotators=[annotator])
    add_everything_else(study, annotator, reviewer)
    files = study_files(study)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        study_delete(study=study)
        assert all(folder.is_dir() for folder in files)
    assert not Study.objects.filter(pk=study.pk).exists()
    assert len(callbacks) == 1
    callbacks[0]()
    assert not any(folder.exists() for folder in files)


def test_a_version_of_another_study_that_descends_from_a_deleted_one_loses_only_its_parent():
    annotator, reviewer = UserFactory(), UserFactory()
    gone, kept = make_study(), make_study()
    add_everything_else(gone, annotator, reviewer)
    run = make_run(kept)
    child = ModelVersion.objects.create(
        study=kept, run=run, kind="reward", version=1, base_model="minilm", artifact_path="x", checksum="0" * 64,
        metrics={}, data_hash="0" * 64, parent=ModelVersion.objects.get(study=gone),
    )  # fmt: skip
    study_delete(study=gone)
    child.refresh_from_db()
    assert child.parent is None


def test_every_relation_into_a_study_s_rows_comes_from_a_model_the_delete_covers():
    """A new model that points at a study's rows must be added to STUDY_MODELS (and its statement)."""
    covered = set(STUDY_MODELS)
    for model in STUDY_MODELS:
        for relation in model._meta.related_objects:
            assert relation.related_model in covered, f"{relation.related_model.__name__}.{relation.field.name}"


def test_the_admin_deletes_a_study_whose_rows_django_s_collector_would_refuse(admin_client, django_capture_on_commit_callbacks):
    """A rejected answer and a registered version PROTECT their rows from Django's own delete."""
    annotator, reviewer = UserFactory(), UserFactory()
    study, other = make_study(annotators=[annotator]), make_study()
    add_everything_else(study, annotator, reviewer)
    files = study_files(study)
    url = reverse("admin:annotate_study_delete", args=[study.pk])

    page = admin_client.get(url)
    assert page.status_code == 200
    assert "Cannot delete" not in page.text and "<li>Annotations: 3</li>" in page.text
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert set(rows_of(study.pk).values()) == {0}
    assert not any(folder.exists() for folder in files)
    assert Study.objects.filter(pk=other.pk).exists()


def test_the_admin_s_bulk_action_deletes_each_selected_study(admin_client):
    annotator, reviewer = UserFactory(), UserFactory()
    first, second, kept = make_study(), make_study(), make_study()
    for study in (first, second):
        add_everything_else(study, annotator, reviewer)
    selected = {"action": "delete_selected", "_selected_action": [first.pk, second.pk]}
    url = reverse("admin:annotate_study_changelist")
    assert "Cannot delete" not in admin_client.post(url, selected).text
    response = admin_client.post(url, {**selected, "post": "yes"})
    assert response.status_code == 302
    assert set(Study.objects.values_list("pk", flat=True)) == {kept.pk}
    assert not Annotation.objects.exists()
