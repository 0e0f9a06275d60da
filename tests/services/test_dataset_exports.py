"""Versioned research exports: immutable snapshots, their filters, Parquet and datasets folders, and bad input."""

import hashlib
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from annotate.errors import InvalidInput
from annotate.models import Annotation, DatasetExport
from annotate.selectors.labels import annotator_pseudonym
from annotate.services import dataset_exports
from annotate.services.dataset_exports import dataset_export_create, dataset_export_file
from tests.factories import UserFactory, make_answer, make_items, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def artifacts(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    return settings.ARTIFACTS_DIR


@pytest.fixture
def labelled():
    """Four pairwise queries; ann and ben agree on q1 and q2, disagree on q3; only ann answered q4."""
    ann, ben = UserFactory(username="ann"), UserFactory(username="ben")
    study = make_study(annotators=[ann, ben], guidelines="Prefer the **correct** sum.")
    make_items(study, n_prompts=4)
    q1, q2, q3, q4 = study.queries.order_by("id")
    for query, choices in ((q1, "aa"), (q2, "bb"), (q3, "ab"), (q4, "a")):
        for person, choice in zip((ann, ben), choices, strict=False):
            make_answer(query, person, choice=choice)
    return study, (ann, ben), (q1, q2, q3, q4)


def rows_of(export: DatasetExport) -> list[dict]:
    return [json.loads(line) for line in dataset_export_file(export).read_text(encoding="utf-8").splitlines()]


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_snapshot_keeps_its_bytes_and_checksum_after_more_labels_while_a_fresh_one_has_them(labelled):
    study, (ann, ben), (q1, q2, q3, q4) = labelled
    first = dataset_export_create(study=study, by=study.created_by, format="trl")
    before = dataset_export_file(first).read_bytes()
    assert first.row_count == 7 == len(before.splitlines())
    assert first.checksum == hashlib.sha256(before).hexdigest()
    assert first.size == len(before)
    make_answer(q4, ben, choice="b")
    fresh = dataset_export_create(study=study, by=study.created_by, format="trl")
    first.refresh_from_db()
    assert dataset_export_file(first).read_bytes() == before
    assert (first.row_count, first.checksum) == (7, hashlib.sha256(before).hexdigest())
    assert fresh.row_count == 8 and fresh.checksum != first.checksum
    assert dataset_export_file(fresh).parent.name == str(fresh.pk)


def test_the_annotators_filter_takes_pseudonyms_and_keeps_only_their_rows(labelled):
    study, (ann, ben), _ = labelled
    export = dataset_export_create(study=study, by=None, format="trl", filters={"annotators": [annotator_pseudonym(ben.pk)]})
    assert export.row_count == 3
    assert {row["annotator"] for row in rows_of(export)} == {annotator_pseudonym(ben.pk)}
    assert export.filters == {"annotators": [annotator_pseudonym(ben.pk)]}


def test_the_date_filters_keep_annotations_given_within_the_days_asked_for(labelled):
    study, people, _ = labelled
    annotations = list(Annotation.objects.order_by("id"))
    days = [datetime(2026, 3, d, 12, tzinfo=UTC) for d in (1, 2, 2, 3, 3, 4, 5)]
    for annotation, day in zip(annotations, days, strict=True):
        Annotation.objects.filter(pk=annotation.pk).update(created_at=day)
    export = dataset_export_create(study=study, by=None, format="raw", filters={"from": "2026-03-02", "to": "2026-03-03"})
    assert [row["annotation_id"] for row in rows_of(export)] == [a.pk for a in annotations[1:5]]
    by_time = dataset_export_create(study=study, by=None, format="raw", filters={"to": "2026-03-01T12:00:00Z"})
    assert [row["annotation_id"] for row in rows_of(by_time)] == [annotations[0].pk]


def test_the_rounds_filter_keeps_the_queries_of_those_rounds(labelled):
    study, _, (q1, q2, q3, q4) = labelled
    study.queries.filter(pk__in=[q3.pk, q4.pk]).update(round=1, strategy="d_optimal")
    export = dataset_export_create(study=study, by=None, format="trl", filters={"rounds": [1]})
    assert {row["query_id"] for row in rows_of(export)} == {q3.pk, q4.pk}
    aggregated = dataset_export_create(study=study, by=None, format="trl", aggregate="majority", filters={"rounds": [1]})
    assert [row["query_id"] for row in rows_of(aggregated)] == [q4.pk]  # q3 is a split: a tie, left out


def test_a_selection_without_query_filters_reads_only_the_annotations(labelled, django_assert_num_queries):
    study, _, _ = labelled
    with django_assert_num_queries(1):  # no read of the study's query ids: nothing filters by them
        chosen = dataset_exports.selection(study, {})
    assert chosen.query_ids is None
    assert chosen.annotation_ids == frozenset(Annotation.objects.filter(query__study=study).values_list("id", flat=True))


def test_min_agreement_keeps_multiply_labelled_queries_whose_answers_agree_enough(labelled):
    study, _, (q1, q2, q3, q4) = labelled
    agreeing = dataset_export_create(study=study, by=None, format="trl", filters={"min_agreement": 1})
    assert {row["query_id"] for row in rows_of(agreeing)} == {q1.pk, q2.pk}
    half = dataset_export_create(study=study, by=None, format="trl", filters={"min_agreement": 0.5})
    assert {row["query_id"] for row in rows_of(half)} == {q1.pk, q2.pk, q3.pk}  # q4, labelled once, has no agreement


def test_parquet_rows_equal_the_json_lines_rows(labelled):
    import pyarrow.parquet as pq

    study, _, _ = labelled
    lines = dataset_export_create(study=study, by=None, format="trl")
    parquet = dataset_export_create(study=study, by=None, format="trl", file_format="parquet")
    assert dataset_export_file(parquet).name == "rows.parquet"
    assert pq.read_table(dataset_export_file(parquet)).to_pylist() == rows_of(lines)
    assert parquet.row_count == lines.row_count == 7
    assert parquet.checksum == hashlib.sha256(dataset_export_file(parquet).read_bytes()).hexdigest()


def test_the_datasets_folder_loads_with_load_from_disk_and_carries_its_card(labelled, tmp_path):
    import datasets

    study, _, (q1, q2, q3, q4) = labelled
    study.queries.filter(pk=q4.pk).update(round=2, strategy="uncertainty")
    export = dataset_export_create(study=study, by=None, format="trl", file_format="hf", filters={"min_agreement": 0.5})
    lines = dataset_export_create(study=study, by=None, format="trl", filters={"min_agreement": 0.5})
    with tarfile.open(dataset_export_file(export)) as tar:
        tar.extractall(tmp_path / "out", filter="data")
    loaded = datasets.load_from_disk(str(tmp_path / "out" / "dataset"))
    assert loaded.to_list() == rows_of(lines)
    card = (tmp_path / "out" / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "- rows: 6" in card and "- queries: 3" in card and "- annotators: 2" in card
    assert "Prefer the **correct** sum." in card
    assert "- min_agreement: 0.5" in card
    assert "| 0 | import | 3 |" in card  # q4 (round 2) was not selected
    assert "uncertainty" not in card
    assert "| Pairwise choices | 0.667 (3 items) |" in card  # agree on q1 and q2, not q3; q4 has one answer
    assert "`wrong-grounding` Wrong-Grounding" in card and "helpfulness" in card
    assert hashlib.sha256(dataset_export_file(lines).read_bytes()).hexdigest() in card


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"from": "last tuesday"}, "filters.from"),
        ({"to": "2026-02-30"}, "filters.to"),
        ({"from": 20260301}, "filters.from"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "filters.to"),
        ({"annotators": ["ann-000000000000"]}, "filters.annotators"),
        ({"annotators": "everyone"}, "filters.annotators"),
        ({"rounds": [7]}, "filters.rounds"),
        ({"rounds": [True]}, "filters.rounds"),
        ({"min_agreement": 0}, "filters.min_agreement"),
        ({"min_agreement": "0.5"}, "filters.min_agreement"),
        ({"exclude_flagged": "yes"}, "filters.exclude_flagged"),
        ({"exclude_flagged": ["lazy"]}, "filters.exclude_flagged"),
        ([], "filters"),
    ],
)
def test_bad_filters_are_refused_naming_the_filter_and_nothing_is_stored(labelled, artifacts, filters, field):
    study, _, _ = labelled
    with pytest.raises(InvalidInput) as refused:
        dataset_export_create(study=study, by=None, format="trl", filters=filters)
    assert refused.value.field == field
    assert not DatasetExport.objects.exists()
    assert stored_files(artifacts) == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"format": "fgrlhf", "filters": {"rounds": [0]}}, "filters.rounds"),
        ({"format": "trl", "aggregate": "majority", "filters": {"from": "2026-01-01"}}, "filters.from"),
        ({"format": "trl", "file_format": "csv"}, "file_format"),
        ({"format": "nope"}, "format"),
        ({"format": "ratings", "aggregate": "majority"}, "aggregate"),
    ],
)
def test_filters_that_do_not_fit_the_format_are_refused_and_nothing_is_stored(labelled, artifacts, options, field):
    study, _, _ = labelled
    with pytest.raises(InvalidInput) as refused:
        dataset_export_create(study=study, by=None, **options)
    assert refused.value.field == field
    assert not DatasetExport.objects.exists()
    assert stored_files(artifacts) == []


def test_a_failure_while_writing_stores_neither_the_record_nor_a_file(labelled, artifacts, monkeypatch):
    study, _, _ = labelled

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(dataset_exports, "write_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        dataset_export_create(study=study, by=None, format="trl", file_format="parquet")
    assert not DatasetExport.objects.exists()
    assert stored_files(artifacts) == []
    assert list((artifacts / "exports" / str(study.pk)).iterdir()) == []
