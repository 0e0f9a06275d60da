"""Every import format and the service that reads it, for the API and the command alike."""

from __future__ import annotations

from annotate.services.argilla import argilla_import
from annotate.services.fgrlhf import fgrlhf_import
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
