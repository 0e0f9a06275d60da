"""Versioned research exports: a study's labels written once to a file that never changes.

A snapshot reuses the export formats of annotate.services.exports (the same rows, the same
generators), keeps the rows its filters select, and stores them under
ARTIFACTS_DIR/exports/<study>/<id>/ as JSON lines, Parquet, or a Hugging Face `datasets` folder
(`save_to_disk`, with a generated README.md dataset card) packed in a tar. The row count and the
file's sha256 are recorded with it, and the download serves the stored bytes: labels given later
change fresh exports, never a snapshot.

Filters (all optional, all combined):
    from, to: ISO dates (a whole day, UTC) or date-times; an annotation given from `from` up to
        and including `to` is kept.
    annotators: pseudonyms as the exports name annotators (`ann-...`); usernames are never asked
        for, as researchers see only pseudonyms.
    rounds: the rounds that chose the queries kept (`Query.round_chosen_in`).
    min_agreement: 0 < x <= 1; keeps queries answered by two annotators or more whose most given
        answer has at least this share of their current answers (annotate.selectors.agreement.
        query_agreement); a query answered once has no agreement and is left out.
    exclude_flagged: true, or a non-empty list of bias flags (annotate.selectors.flags.FLAGS); leaves
        out the current answers with any (of those) flags as the study stood when the snapshot was made.

from, to, annotators and exclude_flagged select annotations, so they apply to formats whose rows come from one
annotation each; with an aggregate (one row from many annotators' votes) or fgrlhf (one record
from all of a prompt's annotations by one annotator) they are refused. rounds and min_agreement
apply to aggregated rows by their query; fgrlhf takes no filters.

Parquet and hf hold all rows in memory while they are written; JSON lines are streamed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import shutil
import tarfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from annotate.errors import InvalidInput
from annotate.models import Annotation, DatasetExport, Query, Study
from annotate.models.exports import FileFormat
from annotate.models.items import CHOSEN_ROUND
from annotate.numbers import is_int
from annotate.selectors.agreement import query_agreement, study_agreement
from annotate.selectors.flags import FLAGS, flagged_annotations
from annotate.selectors.labels import annotator_pseudonym
from annotate.services.exports import export_build

FILTER_KEYS = ("from", "to", "annotators", "rounds", "min_agreement", "exclude_flagged")
# Filters that pick annotations, which aggregated rows and fgrlhf records do not come from one of.
ANNOTATION_FILTERS = ("from", "to", "annotators", "exclude_flagged")
FILE_NAMES = {FileFormat.JSONL: "rows.jsonl", FileFormat.PARQUET: "rows.parquet", FileFormat.HF: "dataset.tar"}
CHUNK_BYTES = 1 << 20


# --- filters ----------------------------------------------------------------------------------


def refuse(key: str, message: str) -> InvalidInput:
    return InvalidInput(f"filters.{key}: {message}", field=f"filters.{key}")


def moment(key: str, value) -> tuple[datetime, bool]:
    """(the instant, whether a whole day was given) of an ISO date or date-time; naive ones are UTC."""
    if isinstance(value, str):
        try:  # both parse functions return None for another shape and raise ValueError for 2026-02-30
            day = parse_date(value) if len(value) == 10 else None
            instant = None if day is not None else parse_datetime(value)
        except ValueError:
            day = instant = None
        if day is not None:
            return datetime.combine(day, time.min, tzinfo=UTC), True
        if instant is not None:
            return (instant if timezone.is_aware(instant) else instant.replace(tzinfo=UTC)), False
    raise refuse(key, f"give an ISO date (2026-01-31) or date-time (2026-01-31T12:00:00Z), not {value!r}.")


def study_pseudonyms(study: Study) -> dict[str, int]:
    """Pseudonym -> user id, for everyone who annotated in the study."""
    ids = Annotation.objects.filter(query__study=study).order_by().values_list("annotator_id", flat=True).distinct()
    return {annotator_pseudonym(user_id): user_id for user_id in ids}


def filters_check(study: Study, filters) -> dict:
    """The filters as they will be stored (lists sorted, duplicates dropped), or a refusal naming the key."""
    if filters is None:
        return {}
    if not isinstance(filters, dict):
        raise InvalidInput(f"filters must be an object with any of {', '.join(FILTER_KEYS)}.", field="filters")
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise refuse(unknown[0], f"unknown filter; use any of {', '.join(FILTER_KEYS)}.")
    checked: dict = {}
    for key in ("from", "to"):
        if filters.get(key) is not None:
            moment(key, filters[key])
            checked[key] = filters[key]
    start, end = window(checked)
    if start is not None and end is not None and start >= end:
        raise refuse("to", f"{checked['to']!r} is before {checked['from']!r}.")
    if filters.get("annotators") is not None:
        names = filters["annotators"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise refuse("annotators", "give a non-empty list of annotator pseudonyms (ann-...), as exports name them.")
        known = study_pseudonyms(study)
        missing = [n for n in names if n not in known]
        if missing:
            raise refuse("annotators", f"no annotator of this study has the pseudonym {missing[0]!r}.")
        checked["annotators"] = sorted(set(names))
    if filters.get("rounds") is not None:
        rounds = filters["rounds"]
        if not isinstance(rounds, list) or not rounds or not all(is_int(r) and 0 <= r <= 2**31 - 1 for r in rounds):
            raise refuse("rounds", f"give a non-empty list of round numbers (whole numbers from 0), not {rounds!r}.")
        chosen = Query.objects.filter(study=study).annotate(chosen_in=CHOSEN_ROUND).filter(chosen_in__in=rounds)
        present = set(chosen.values_list("chosen_in", flat=True).distinct())
        absent = sorted(set(rounds) - present)
        if absent:
            raise refuse("rounds", f"this study has no query in round {absent[0]}.")
        checked["rounds"] = sorted(set(rounds))
    if filters.get("min_agreement") is not None:
        share = filters["min_agreement"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share) or not 0 < share <= 1:
            raise refuse("min_agreement", f"give a number above 0 and at most 1 (a share of agreeing answers), not {share!r}.")
        checked["min_agreement"] = share
    if filters.get("exclude_flagged") not in (None, False):
        names = filters["exclude_flagged"]
        if names is True:
            names = list(FLAGS)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n in FLAGS for n in names):
            raise refuse(
                "exclude_flagged", f"give true or a non-empty list of bias flags from {', '.join(FLAGS)}, not {names!r}."
            )
        checked["exclude_flagged"] = [name for name in FLAGS if name in names]
    return checked


def window(filters: dict) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the from/to filters; a `to` date includes its whole day."""
    start = moment("from", filters["from"])[0] if "from" in filters else None
    end = None
    if "to" in filters:
        end, whole_day = moment("to", filters["to"])
        end = end + (timedelta(days=1) if whole_day else timedelta(microseconds=1))
    return start, end


@dataclass(frozen=True)
class Selection:
    """Which rows a snapshot keeps: by annotation (rows that name one) and by query (aggregated rows)."""

    annotation_ids: frozenset[int]
    query_ids: frozenset[int] | None

    def keeps(self, row: dict) -> bool:
        if "annotation_id" in row:
            return row["annotation_id"] in self.annotation_ids
        return self.query_ids is None or row["query_id"] in self.query_ids


def selection(study: Study, filters: dict) -> Selection:
    """The annotations and queries the filters select, read once before any row is written: labels
    given while the file is being written are not in it."""
    queries = Query.objects.filter(study=study)
    if "rounds" in filters:
        queries = queries.alias(chosen=CHOSEN_ROUND).filter(chosen__in=filters["rounds"])
    by_query = "rounds" in filters or "min_agreement" in filters
    query_ids = frozenset(queries.values_list("id", flat=True)) if by_query else None
    if "min_agreement" in filters:  # filtered here, not as an IN list: a large study passes the parameter limit
        agreeing = {q for q, (share, _) in query_agreement(study).items() if share >= filters["min_agreement"]}
        query_ids &= agreeing
    annotations = Annotation.objects.filter(query__in=queries)
    start, end = window(filters)
    if start is not None:
        annotations = annotations.filter(created_at__gte=start)
    if end is not None:
        annotations = annotations.filter(created_at__lt=end)
    if "annotators" in filters:
        pseudonyms = study_pseudonyms(study)
        annotations = annotations.filter(annotator_id__in=[pseudonyms[name] for name in filters["annotators"]])
    selected = {a for a, q in annotations.values_list("id", "query_id") if query_ids is None or q in query_ids}
    if "exclude_flagged" in filters:
        selected -= set(flagged_annotations(study, tuple(filters["exclude_flagged"])))
    return Selection(frozenset(selected), query_ids)


# --- writing ----------------------------------------------------------------------------------


def exports_dir(study: Study) -> Path:
    return Path(settings.ARTIFACTS_DIR) / "exports" / str(study.pk)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def write_jsonl(rows: Iterable[dict], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def write_parquet(rows: list[dict], path: Path, format: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pq.write_table(pa.Table.from_pylist(rows), path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"The {format} rows cannot be written as Parquet: {exc}", field="file_format") from exc


def write_hf_tar(rows: list[dict], card: str, path: Path, format: str) -> None:
    """A `datasets` save_to_disk folder with README.md, packed in a tar whose bytes depend only on its files."""
    import datasets
    import pyarrow as pa

    folder = path.parent / "dataset"
    try:
        datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"The {format} rows cannot be written as a datasets folder: {exc}", field="file_format") from exc
    (folder / "README.md").write_text(card, encoding="utf-8")
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(file), arcname=str(Path("dataset") / file.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
            with file.open("rb") as handle:
                tar.addfile(info, handle)
    shutil.rmtree(folder)


@dataclass(frozen=True)
class Built:
    row_count: int
    rows_sha256: str


def build(study: Study, folder: Path, *, format: str, file_format: str, filters: dict, sources, aggregate) -> Built:
    """Write the snapshot's one file into `folder` (JSON lines first: every file format starts from them)."""
    export = export_build(study=study, format=format, sources=sources, aggregate=aggregate)
    chosen = selection(study, filters) if filters or format != "fgrlhf" else None
    rows = (row for row in export.rows if chosen is None or chosen.keeps(row))
    lines = folder / FILE_NAMES[FileFormat.JSONL]
    count = write_jsonl(rows, lines)
    built = Built(count, sha256_of(lines))
    if file_format == FileFormat.PARQUET:
        write_parquet(list(read_jsonl(lines)), folder / FILE_NAMES[file_format], format)
    elif file_format == FileFormat.HF:
        stored = list(read_jsonl(lines))
        card = dataset_card(study, stored, format=format, filters=filters, sources=sources, aggregate=aggregate, built=built)
        write_hf_tar(stored, card, folder / FILE_NAMES[file_format], format)
    if file_format != FileFormat.JSONL:
        lines.unlink()
    return built


def formats_check(format: str, file_format: str, filters: dict, aggregate) -> None:
    if file_format not in FileFormat.values:
        raise InvalidInput(
            f"Unknown file format {file_format!r}; use one of {', '.join(FileFormat.values)}.", field="file_format"
        )
    if file_format == FileFormat.HF and importlib.util.find_spec("datasets") is None:
        raise InvalidInput(
            "The hf file format needs the datasets package: install Preflab with its ml extra.", field="file_format"
        )
    picked = [key for key in FILTER_KEYS if key in filters]
    if format == "fgrlhf" and picked:
        raise refuse(picked[0], "fgrlhf records join all of a prompt's annotations by one annotator; they take no filters.")
    by_annotation = [key for key in ANNOTATION_FILTERS if key in filters]
    if aggregate and by_annotation:
        raise refuse(
            by_annotation[0], "an aggregate's row combines every annotator's votes on a query; filter by rounds or min_agreement."
        )


def dataset_export_create(
    *,
    study: Study,
    by: AbstractBaseUser | None,
    format: str,
    file_format: str = FileFormat.JSONL,
    filters: dict | None = None,
    sources: str | None = None,
    aggregate: str | None = None,
) -> DatasetExport:
    """Write and record a snapshot; on any failure nothing is stored, neither the row nor a file.

    The file is written in a folder of its own and renamed to exports/<study>/<id>/ once its row
    exists, inside the transaction that stores the row.
    """
    filters = filters_check(study, filters)
    formats_check(format, file_format, filters, aggregate)
    parent = exports_dir(study)
    partial = parent / f".partial-{uuid.uuid4().hex}"
    partial.mkdir(parents=True)
    final = None
    try:
        built = build(
            study, partial, format=format, file_format=file_format, filters=filters, sources=sources, aggregate=aggregate
        )
        stored = partial / FILE_NAMES[file_format]
        with transaction.atomic():
            record = DatasetExport.objects.create(
                study=study,
                format=format,
                file_format=file_format,
                filters=filters,
                sources=sources or "",
                aggregate=aggregate or "",
                row_count=built.row_count,
                checksum=sha256_of(stored),
                size=stored.stat().st_size,
                path="",
                created_by=by if by is not None and by.is_authenticated else None,
            )
            final = parent / str(record.pk)
            partial.rename(final)
            record.path = str((final / stored.name).relative_to(settings.ARTIFACTS_DIR))
            record.save(update_fields=["path"])
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        if final is not None:
            shutil.rmtree(final, ignore_errors=True)
        raise
    return record


def dataset_export_file(export: DatasetExport) -> Path:
    return Path(settings.ARTIFACTS_DIR) / export.path


# --- the dataset card -------------------------------------------------------------------------


def figure_text(figure: dict) -> str:
    if figure["value"] is None:
        return f"undefined ({figure['reason']})"
    return f"{figure['value']:.3f} ({figure['items']} items)"


def vocabulary_lines(entries: list) -> list[str]:
    lines = []
    for entry in entries or []:
        if isinstance(entry, dict):
            key, label, note = entry.get("key", ""), entry.get("label", ""), entry.get("description", "")
            lines.append(f"- `{key}` {label}" + (f": {note}" if note else ""))
        else:
            lines.append(f"- {entry}")
    return lines or ["(none)"]


def dataset_card(study: Study, rows: list[dict], *, format: str, filters: dict, sources, aggregate, built: Built) -> str:
    """README.md for the datasets folder: what is in it, how it was chosen, and how far annotators agree."""
    query_ids = {row["query_id"] for row in rows if "query_id" in row}
    prompts = {row["prompt_id"] for row in rows if "prompt_id" in row}
    annotators = {row["annotator"] for row in rows if "annotator" in row} | {
        name for row in rows for name in row.get("annotators", [])
    }
    chosen_by = (
        Query.objects.filter(pk__in=query_ids)
        .annotate(chosen_in=CHOSEN_ROUND)
        .order_by("chosen_in", "strategy")
        .values_list("chosen_in", "strategy")
        .annotate(n=Count("id"))
    )
    lines = [
        "---",
        f"pretty_name: {json.dumps(f'{study.name}: {format} labels', ensure_ascii=False)}",
        "---",
        "",
        f"# {study.name}: {format} labels",
        "",
        f"Exported by Preflab on {timezone.now().date().isoformat()}, in the `{format}` row format "
        "(row shapes: `annotate/services/exports.py`). Annotators are named by pseudonyms.",
        "",
        "## Counts",
        "",
        f"- rows: {built.row_count}",
        f"- queries: {len(query_ids)}",
        f"- prompts: {len(prompts)}",
        f"- annotators: {len(annotators)}",
        "",
        "## Selection",
        "",
        f"- sources: {sources or 'all'}",
        f"- aggregate: {aggregate or 'none (one row per annotation)'}",
        *(f"- {key}: {json.dumps(value)}" for key, value in filters.items()),
        *([] if filters else ["- filters: none (every current label)"]),
        f"- sha256 of the rows as JSON lines: `{built.rows_sha256}`",
        "",
        "## Rounds and strategies that chose the queries",
        "",
        "| round | strategy | queries |",
        "|---|---|---|",
        *(f"| {round_} | {strategy} | {n} |" for round_, strategy, n in chosen_by),
        "",
        "## Agreement (every current label of the study)",
        "",
    ]
    kinds = study_agreement(study)["kinds"]
    if kinds:
        lines += ["| kind | raw agreement | Fleiss' κ | Krippendorff's α |", "|---|---|---|---|"]
        for figures in kinds.values():
            lines.append(
                f"| {figures['label']} | {figure_text(figures['raw_agreement'])} | {figure_text(figures['fleiss_kappa'])} "
                f"| {figure_text(figures['krippendorff_alpha'])} |"
            )
    else:
        lines.append("No labels to compare.")
    lines += [
        "",
        "## Guidelines",
        "",
        study.guidelines or "(none)",
        "",
        "## Span taxonomy",
        "",
        *vocabulary_lines(study.span_taxonomy),
        "",
        "## Rating aspects",
        "",
        *vocabulary_lines(study.rating_aspects),
        "",
    ]
    return "\n".join(lines)
