"""Every import format and the service that reads it, for the API, the command and the dashboard alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from annotate.errors import InvalidInput
from annotate.models import Study
from annotate.services.argilla import argilla_import
from annotate.services.fgrlhf import fgrlhf_import
from annotate.services.items import ImportResult, items_import
from annotate.services.labelstudio import labelstudio_import
from annotate.services.trl_import import trl_import

# Formats read whole (a JSON array, a Parquet file), with their labels; jsonl is read line by line (items_import).
WHOLE_FILE_IMPORTERS = {
    "fgrlhf": fgrlhf_import,
    "trl": trl_import,
    "labelstudio": labelstudio_import,
    "argilla": argilla_import,
}
IMPORT_FORMATS = ("jsonl", *WHOLE_FILE_IMPORTERS)
FORMAT_LABELS = {
    "jsonl": "Prompts and responses (JSON lines)",
    "fgrlhf": "FineGrainedRLHF qa_feedback",
    "trl": "TRL preference rows (JSON lines or Parquet)",
    "labelstudio": "Label Studio JSON export",
    "argilla": "Argilla records",
}


def import_format_check(format: str) -> None:
    if format not in IMPORT_FORMATS:
        raise InvalidInput(f"Unknown import format {format!r}; use one of {', '.join(IMPORT_FORMATS)}.", field="format")


def study_file_import(
    *, study: Study, format: str, file: bytes | Iterable[bytes], progress: Callable[[int, int], None] | None = None
) -> ImportResult:
    """Import a file in `format`: its lines (a binary file object) for jsonl, read whole for the others.

    `progress(done, total)` is called as a jsonl import stores its chunks.
    """
    import_format_check(format)
    if format == "jsonl":
        return items_import(study=study, lines=file, progress=progress)
    if isinstance(file, bytes):
        data = file
    elif hasattr(file, "read"):
        data = file.read()
    else:
        data = b"".join(file)
    return WHOLE_FILE_IMPORTERS[format](study=study, data=data)
