import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotate.errors import PreflabError
from annotate.management.commands._study import find_study
from annotate.services.exports import AGGREGATES, EXPORT_FORMATS, PREFERENCE_SOURCES, export_build


class Command(BaseCommand):
    help = (
        "Write a study's labels as JSON lines in one of the formats trl, rankings, spans, critiques, ratings, kto, "
        "raw, fgrlhf (row shapes: annotate/services/exports.py)."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", help="study id or exact name")
        parser.add_argument("--format", default="trl", choices=EXPORT_FORMATS)
        parser.add_argument(
            "--sources", help=f"trl and kto only: comma-separated, any of {', '.join(PREFERENCE_SOURCES)} (default all)"
        )
        parser.add_argument(
            "--aggregate",
            choices=AGGREGATES,
            help="trl only: one row per pairwise query, labelled by this aggregate of its votes",
        )
        parser.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")

    def handle(self, *args, **options):
        study = find_study(options["study"])
        try:
            export = export_build(
                study=study, format=options["format"], sources=options["sources"], aggregate=options["aggregate"]
            )
        except PreflabError as exc:
            raise CommandError(exc.message) from None
        output: Path | None = options["output"]
        # The bar goes to standard error, and only on a terminal; not when the rows go to that terminal too.
        quiet = None if output is not None or not sys.stdout.isatty() else True
        rows = tqdm(export.rows, total=export.counts["rows"], unit="row", desc="exporting", file=sys.stderr, disable=quiet)
        if output is None:
            self.write_rows(rows, sys.stdout)
        else:
            # Write beside the target and rename, so a failed export never leaves half a file.
            partial = output.with_name(output.name + ".partial")
            with partial.open("w", encoding="utf-8") as handle:
                self.write_rows(rows, handle)
            partial.replace(output)
        counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in export.counts.items())
        self.stderr.write(f"Exported {study.name!r} as {export.format} — {counts}")

    @staticmethod
    def write_rows(rows, handle) -> None:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
