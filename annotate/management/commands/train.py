import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from tqdm import tqdm

from annotate.cli.commands import parse_setting
from annotate.errors import PreflabError
from annotate.management.commands._study import find_study
from annotate.models import ModelVersion, TrainingRun
from annotate.services.training import training_run_execute, training_run_start

POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = "Train a model from a study's labels, on a Celery worker (default) or in this process, with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("study", help="study id or exact name")
        parser.add_argument("--kind", default="reward")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config value, repeatable")
        parser.add_argument("--inline", action="store_true", help="train in this process instead of on a worker")
        parser.add_argument("--no-follow", action="store_true", help="queue the run and return at once")

    def handle(self, *args, **options):
        study = find_study(options["study"])
        try:
            config = dict(parse_setting(item) for item in options["set"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        manager = study.created_by
        try:
            run = training_run_start(
                study=study, requested_by=manager, kind=options["kind"], config=config, enqueue=not options["inline"]
            )
        except PreflabError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Run {run.pk} ({run.kind}) for {study.name!r}: {run.config}")
        if options["no_follow"] and not options["inline"]:
            return
        worker = None
        if options["inline"]:
            worker = threading.Thread(target=self.execute_inline, args=(run.pk,), daemon=True)
            worker.start()
        run = self.follow(run.pk, worker)
        if run.status != "succeeded":
            raise CommandError(f"Run {run.pk} {run.status}: {run.error or run.message}")
        version = ModelVersion.objects.get(run=run)
        self.stdout.write(self.style.SUCCESS(f"Registered {version} at {version.artifact_path}"))
        for name, value in sorted(version.metrics.items()):
            if not isinstance(value, dict):
                self.stdout.write(f"  {name}: {value}")

    @staticmethod
    def execute_inline(run_id: int) -> None:
        try:
            training_run_execute(run_id=run_id)
        finally:
            connection.close()

    def follow(self, run_id: int, worker: threading.Thread | None) -> TrainingRun:
        """Show the run's progress as its worker writes it, until it finishes."""
        with tqdm(total=1, unit="step", desc="waiting for a worker") as bar:
            while True:
                run = TrainingRun.objects.get(pk=run_id)
                if run.total_steps:
                    bar.total = run.total_steps
                    bar.set_description("training")
                    bar.update(run.step - bar.n)
                    if run.loss is not None:
                        bar.set_postfix(loss=f"{run.loss:.4f}")
                if run.is_finished or (worker is not None and not worker.is_alive()):
                    run.refresh_from_db()
                    return run
                time.sleep(POLL_SECONDS)
