import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotate.errors import PreflabError
from annotate.management.commands._study import find_study
from annotate.services.importers import IMPORT_FORMATS, study_file_import


class Command(BaseCommand):
    help = (
        "Import into a study, all or nothing: prompts and responses from a JSON-lines file (jsonl), or a file "
        "with its labels: FineGrainedRLHF qa_feedback (fgrlhf), TRL preference rows as JSON lines or Parquet "
        "(trl), a Label Studio JSON export (labelstudio) or Argilla v2 records (argilla)."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", help="study id or exact name")
        parser.add_argument(
            "file",
            type=Path,
            help="jsonl: one {id?, prompt, responses, metadata?} per line; fgrlhf, labelstudio: one JSON array; "
            "trl: JSON lines or Parquet; argilla: a JSON array or JSON lines",
        )
        parser.add_argument("--format", default="jsonl", choices=IMPORT_FORMATS)

    def handle(self, *args, **options):
        study = find_study(options["study"])
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        try:
            # The bar (on a terminal only) counts jsonl records as they are stored, after every line was checked.
            with path.open("rb") as file, tqdm(unit="record", desc="storing", file=sys.stderr, disable=None) as bar:

                def progress(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                result = study_file_import(study=study, format=options["format"], file=file, progress=progress)
        except PreflabError as exc:
            raise CommandError(f"{path}: {exc.message}") from None
        counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in result.as_dict().items())
        self.stdout.write(self.style.SUCCESS(f"Imported into {study.name!r} — {counts}"))
