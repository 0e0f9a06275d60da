import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotate.errors import PreflabError
from annotate.management.commands._study import find_study
from annotate.models.exports import FileFormat
from annotate.services.dataset_exports import dataset_export_create, dataset_export_file
from annotate.services.exports import AGGREGATES, EXPORT_FORMATS, PREFERENCE_SOURCES, export_build, parse_flags


class Command(BaseCommand):
    help = (
        "Write a study's labels as JSON lines in one of the formats trl, rankings, spans, critiques, ratings, kto, "
        "raw, fgrlhf (row shapes: annotate/services/exports.py); with --snapshot, store them as an immutable snapshot."
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
        parser.add_argument(
            "--exclude-flagged",
            nargs="?",
            const="1",
            metavar="FLAGS",
            help="leave out answers with bias flags: any (no value) or comma-separated flags (too_fast,cycle)",
        )
        parser.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")
        snapshot = parser.add_argument_group("snapshot", "a stored, immutable export (annotate/services/dataset_exports.py)")
        snapshot.add_argument("--snapshot", action="store_true", help="store a snapshot and print its id, rows and checksum")
        snapshot.add_argument("--file-format", default=FileFormat.JSONL, choices=FileFormat.values)
        snapshot.add_argument(
            "--from", dest="from_", metavar="DATE", help="annotations given on or after (ISO date or date-time)"
        )
        snapshot.add_argument("--to", metavar="DATE", help="annotations given up to and including (ISO date or date-time)")
        snapshot.add_argument("--annotator", action="append", help="an annotator's pseudonym (ann-...); repeat for several")
        snapshot.add_argument("--round", action="append", type=int, help="a round whose queries to keep; repeat for several")
        snapshot.add_argument("--min-agreement", type=float, help="queries answered twice or more, agreeing at least this much")

    def handle(self, *args, **options):
        study = find_study(options["study"])
        if options["snapshot"]:
            return self.snapshot(study, options)
        try:
            export = export_build(
                study=study,
                format=options["format"],
                sources=options["sources"],
                aggregate=options["aggregate"],
                exclude_flagged=options["exclude_flagged"],
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

    def snapshot(self, study, options) -> None:
        if options["output"] is not None:
            raise CommandError("A snapshot is stored under PREFLAB_ARTIFACTS_DIR; --output does not apply.")
        given = {
            "from": options["from_"],
            "to": options["to"],
            "annotators": options["annotator"],
            "rounds": options["round"],
            "min_agreement": options["min_agreement"],
        }
        try:
            if options["exclude_flagged"] is not None:
                given["exclude_flagged"] = list(parse_flags(options["exclude_flagged"]))
            export = dataset_export_create(
                study=study,
                by=None,
                format=options["format"],
                file_format=options["file_format"],
                filters={key: value for key, value in given.items() if value is not None},
                sources=options["sources"],
                aggregate=options["aggregate"],
            )
        except PreflabError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Snapshot {export.pk} of {study.name!r}: {export.row_count} rows, sha256 {export.checksum}, "
            f"{dataset_export_file(export)}"
        )

    @staticmethod
    def write_rows(rows, handle) -> None:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
