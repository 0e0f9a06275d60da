import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from tqdm import tqdm

from annotate.services.demo import DEMO_PASSWORD, DEMO_RESPONSES, demo_generate, demo_setup


class Command(BaseCommand):
    help = "Migrate, create the demo study and users, then run the web server and a Celery worker."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--regenerate", action="store_true", help="write fresh demo responses with the default model")
        parser.add_argument("--no-serve", action="store_true", help="set everything up, then stop")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database ready: " + str(settings.DATABASES["default"]["NAME"]))
        responses = DEMO_RESPONSES
        if options["regenerate"]:
            responses = Path(settings.VAR_DIR) / "demo" / "responses.jsonl"
            self.stdout.write("Generating demo responses with the default policy model (SmolLM2-135M-Instruct)…")
            with tqdm(total=0, unit="prompt", desc="generating") as bar:

                def progress(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                demo_generate(model="smollm2", output=responses, progress=progress)
        demo = demo_setup(responses_file=responses)
        counts = demo.imported
        self.stdout.write(
            f"Demo study {demo.study.name!r}: {counts.prompts_created} new prompts, {counts.queries_created} new queries."
        )
        if options["no_serve"]:
            return
        worker = self.start_worker()
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"\nPreflab is running at {url}"))
        for username, role in demo.users.items():
            self.stdout.write(f"  log in as {username:<16} password {DEMO_PASSWORD}  ({role})")
        self.stdout.write(f"  Celery worker (queues default, gpu; beat) logs to {self.worker_log}\n  Stop with Ctrl-C.\n")
        # Ctrl-C, a kill or a closed terminal all stop the worker too, rather than leave it running.
        for stop in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(stop, lambda number, frame: sys.exit(128 + number))
        try:
            call_command("runserver", f"{options['host']}:{options['port']}", use_reloader=False)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()

    def start_worker(self) -> subprocess.Popen:
        """One real Celery worker for both queues, on the same broker and database as the web server.

        It runs the one beat too (-B), whose sweep queues again a training job whose worker was lost.
        """
        self.worker_log = Path(settings.VAR_DIR) / "worker.log"
        self.worker_log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "celery", "-A", "annotate", "worker", "-B", "-Q", "default,gpu", "-c", "1", "-l", "info"]
        with self.worker_log.open("ab") as log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(), cwd=settings.BASE_DIR)
