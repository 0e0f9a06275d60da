"""Web load benchmark: import, many annotators answering at once, export. Prints its figures.

Run by hand (never from the tests), against PostgreSQL:

    createdb -h 127.0.0.1 -U postgres preflab_bench        # once
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/preflab_bench DEBUG=0 SECRET_KEY=x \\
        .venv/bin/python bench/web_load.py

By default it migrates the database named by DATABASE_URL, starts
`gunicorn annotate.wsgi:application -w <2 x cores>` on a free port of 127.0.0.1 with the current
environment, and stops it on exit. With --url it uses a server already running on 127.0.0.1
instead; that server must use the same database as this process (users and tokens are made here
through the ORM). Then:

1. a manager creates a study (overlap 1) through the API and imports N prompts with two responses
   each (500-1500 characters) as application/x-ndjson: N pairwise queries;
2. K annotator threads, each with its own keep-alive connection and token, loop
   GET /studies/{id}/queries/next/ + POST /queries/{qid}/annotations/ until M labels are in;
3. the manager downloads the TRL export.

It talks only to 127.0.0.1, stops after M labels or --max-seconds, and deletes what it made
(unless --keep).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
TARGET_P95_MS = 50.0
TARGET_SUBMITS_PER_S = 300.0  # issue 2's figure; now only what the capacity line sizes a server for
# Label Studio 1.23.2 on the trial's machine (PostgreSQL, gunicorn -w 4, 8 API clients): 11.7 to
# 12.6 labels/s. The target is relative to it on the same machine and workload.
LABEL_STUDIO_SUBMITS_PER_S = 12.0
TARGET_RATIO = 30.0
TARGET_CLIENTS = 8
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
REQUEST_TIMEOUT_S = 60.0

WORDS = (
    "the model answer question user should would could because however therefore example code data "
    "function value result error first second then also more most which when where while about into "
    "between through during before after above below under again further once here there all each few "
    "other some such only own same than too very can will just explain consider approach method step "
    "simple clear detail important note likely possible important summary reason context language python "
    "return list string number table figure test case input output performance memory time problem "
    "solution check careful better worse good helpful harmless honest policy reward preference training"
).split()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# Text of realistic length


def sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(6, 22))
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!"])


def text_of_length(rng: random.Random, low: int, high: int) -> str:
    target = rng.randint(low, high)
    parts: list[str] = []
    length = 0
    while length < target:
        paragraph = " ".join(sentence(rng) for _ in range(rng.randint(2, 5)))
        parts.append(paragraph)
        length += len(paragraph) + 2
    return "\n\n".join(parts)[:high]


def import_records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        first = text_of_length(rng, 500, 1500)
        second = text_of_length(rng, 500, 1500)
        while second == first:  # never in practice; the importer refuses equal responses
            second = text_of_length(rng, 500, 1500)
        records.append({"id": f"bench-{i}", "prompt": text_of_length(rng, 80, 400), "responses": [first, second]})
    return records


# ---------------------------------------------------------------------------------------------
# HTTP


class ApiClient:
    """One keep-alive connection with a token. Not thread-safe: one per thread.

    gunicorn's sync workers close the connection after each response; http.client then reopens it
    for the next request, so the cost of a new loopback connection is part of the figures.
    """

    def __init__(self, host: str, port: int, token: str):
        self.host, self.port = host, port
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        self.connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT_S)

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
        """(status, headers, body) after reading the whole reply."""
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                reply = self.connection.getresponse()
                return reply.status, reply.headers, reply.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server had closed. Repeating is safe: GETs are
                # reads, and a repeated submit carries the same client_key.
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: dict | None = None, expect: tuple[int, ...] = (200,)):
        body = json.dumps(payload).encode() if payload is not None else None
        status, _, data = self.request(method, path, body, "application/json" if body is not None else None)
        if status not in expect:
            raise SystemExit(f"{method} {path} answered {status}: {data[:500].decode(errors='replace')}")
        return json.loads(data) if data else None

    def close(self) -> None:
        self.connection.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn in a subprocess on 127.0.0.1, with this process's environment; stopped on exit."""

    def __init__(self, workers: int, threads: int = 1):
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="preflab-bench-gunicorn-", suffix=".log", delete=False)
        self.process: subprocess.Popen | None = None

    def start(self, wait_s: float = 60.0) -> None:
        argv = [
            sys.executable, "-m", "gunicorn", "annotate.wsgi:application",
            "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}", "--log-level", "warning",
        ]  # fmt: skip
        if self.threads > 1:  # gthread workers keep connections alive; sync workers close each one
            argv += ["-k", "gthread", "--threads", str(self.threads)]
        self.process = subprocess.Popen(argv, cwd=ROOT, env=os.environ.copy(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/api/v1/studies/")
                connection.getresponse().read()
                connection.close()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer within {wait_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: workers finish their request
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Figures


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def latency_line(name: str, values: list[float]) -> str:
    """One call's latencies (ms) as the figures print them: p50, p95 and max."""
    p50, p95, most = percentile(values, 50), percentile(values, 95), max(values, default=math.nan)
    return f"  {name:<12}p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {most:6.1f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def reference_loop_ms(additions: int = 1_000_000) -> float:
    """Milliseconds this machine takes for a fixed pure-Python loop, best of three.

    Shared machines differ in speed by 2x and more, and drift between sittings; this figure lets
    two runs' CPU times per label be compared after dividing each by its machine's.
    """
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(additions):
            total += i
        best = min(best, time.perf_counter() - started)
    return best * 1000


def process_table() -> dict[int, tuple[int, str, float]]:
    """Every process's (parent pid, name, CPU seconds so far), from /proc; empty where there is no /proc."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    table = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile, or no /proc
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return table


def descendants(table: dict[int, tuple[int, str, float]], root: int) -> set[int]:
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return found


@dataclass
class CpuUse:
    """CPU time spent while the labels went in."""

    machine_busy: float | None  # share of all cores, from /proc/stat; None without it
    clients_s: float  # this process: the client threads
    server_s: float | None  # gunicorn's master and workers; None when the server is not ours (--url)
    database_s: float | None  # every process named postgres on this machine; None without /proc


class CpuMeter:
    """How busy the machine was between start() and stop(), and which processes used the time.

    A process that exited in between is missed; gunicorn's workers and their PostgreSQL backends
    live through the run.
    """

    def __init__(self, server_pid: int | None):
        self.server_pid = server_pid

    @staticmethod
    def read_machine() -> tuple[int, int] | None:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    def start(self) -> None:
        self.first_table = process_table()
        self.first = self.read_machine()
        self.process_cpu = time.process_time()

    def stop(self) -> CpuUse:
        last = self.read_machine()
        clients = time.process_time() - self.process_cpu
        table = process_table()
        machine = None
        if self.first is not None and last is not None and last[0] != self.first[0]:
            total, idle = last[0] - self.first[0], last[1] - self.first[1]
            machine = 1 - idle / total

        def used(pids) -> float:
            return sum(table[pid][2] - self.first_table.get(pid, (0, "", 0.0))[2] for pid in pids)

        server = used(descendants(table, self.server_pid)) if self.server_pid and table else None
        database = used(pid for pid, (_, name, _) in table.items() if name.startswith("postgres")) if table else None
        return CpuUse(machine, clients, server, database)


@dataclass
class LabelRun:
    wanted: int
    deadline: float
    issued: int = 0
    done: int = 0
    exhausted: bool = False
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    round_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def take_ticket(self) -> bool:
        with self.lock:
            if self.stop.is_set() or self.issued >= self.wanted or time.monotonic() > self.deadline:
                return False
            self.issued += 1
            return True

    def record(self, t0: float, t1: float, t2: float, *, timed_next: bool = True) -> None:
        """A label is in: next took t0 to t1, its submit t1 to t2 (perf_counter seconds)."""
        with self.lock:
            self.done += 1
            if timed_next:
                self.next_ms.append((t1 - t0) * 1000)
            self.submit_ms.append((t2 - t1) * 1000)
            self.round_ms.append((t2 - t0) * 1000)

    def failed(self, exc: Exception) -> None:
        """A client thread raised: reported, and it stops the others."""
        with self.lock:
            self.errors[f"{type(exc).__name__}: {exc}"] += 1
        self.stop.set()

    def ran_out(self) -> None:
        """Nothing was left for a client: its ticket goes back, and the run says the pool ran out."""
        with self.lock:
            self.exhausted = True
            self.issued -= 1

    def error(self, call: str, status: int, body: bytes) -> None:
        """`call` ("next", "submit") answered `status`: counted, its ticket goes back; too many stop the run."""
        with self.lock:
            self.errors[f"{call} {status}: {body[:200].decode(errors='replace')}"] += 1
            self.issued -= 1
            if sum(self.errors.values()) > max(20, self.wanted // 100):
                self.stop.set()


def annotator_loop(
    client: ApiClient, study_id: int, run: LabelRun, bar: tqdm, seed: int, start: threading.Barrier, combined: bool = False
) -> None:
    """next + submit until the run has its labels; `combined` submits with ?next=1 and skips the GET."""
    rng = random.Random(seed)
    pending: dict | None = None  # the next query a combined submit already returned
    try:
        start.wait()
        while run.take_ticket():
            t0 = time.perf_counter()
            fetched = pending is None
            if pending is not None:
                status, body = 200, json.dumps(pending).encode()
            else:
                status, _, body = client.request("GET", f"/api/v1/studies/{study_id}/queries/next/")
            pending = None
            t1 = time.perf_counter()
            if status == 204:
                # Nothing left for this client. The others go on: a query another client still
                # holds (a combined submit's next) is why it saw none, and it will be answered.
                run.ran_out()
                return
            if status != 200:
                run.error("next", status, body)
                continue
            query = json.loads(body)
            payload = {
                "choice": rng.choices(["a", "b", "tie", "both_bad"], weights=[45, 45, 7, 3])[0],
                "strength": rng.randint(1, 3),
                "client_key": uuid.uuid4().hex,
            }
            suffix = "?next=1" if combined else ""
            status, _, body = client.request(
                "POST", f"/api/v1/queries/{query['id']}/annotations/{suffix}", json.dumps(payload).encode(), "application/json"
            )
            t2 = time.perf_counter()
            if status != 201:
                run.error("submit", status, body)
                continue
            if combined:
                pending = json.loads(body)["next"]  # None at the end: the next GET then says 204
            run.record(t0, t1, t2, timed_next=fetched)  # a combined run times only the GETs it makes (each client's first)
            bar.update(1)
    except Exception as exc:
        run.failed(exc)
    finally:
        client.close()


def label_phase(loops: list[Callable[[threading.Barrier], None]], run: LabelRun, meter: CpuMeter) -> tuple[float, CpuUse]:
    """Run each annotator loop (given the start barrier) in its own thread, all released at once.

    Returns the seconds from the release until the last thread ended, and the CPU used meanwhile.
    Ctrl-C stops the run's threads, then goes on.
    """
    # Client threads mostly wait on sockets; a short switch interval keeps one thread's JSON
    # parsing from adding up to 5 ms (the default) to another's measured latency.
    sys.setswitchinterval(0.0005)
    barrier = threading.Barrier(len(loops) + 1)
    threads = [threading.Thread(target=loop, args=(barrier,), name=f"annotator-{i}", daemon=True) for i, loop in enumerate(loops)]
    for thread in threads:
        thread.start()
    barrier.wait()
    meter.start()
    started = time.perf_counter()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)
    except KeyboardInterrupt:
        run.stop.set()
        raise
    label_s = time.perf_counter() - started
    return label_s, meter.stop()


# ---------------------------------------------------------------------------------------------
# Setup through Django's ORM (users, tokens) and the API (study, members)


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    import django

    django.setup()


def database_description() -> tuple[str, str]:
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return "sqlite", f"SQLite {settings['NAME']}"
    host = settings.get("HOST") or "local socket"
    if host not in LOCAL_HOSTS | {"local socket", "::1"}:
        raise SystemExit(f"DATABASE_URL points at {host}; this benchmark only talks to 127.0.0.1.")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
    threshold = settings["OPTIONS"].get("prepare_threshold")
    prepared = "never prepared" if threshold is None else f"prepared after {threshold} runs"
    where = f"database {settings['NAME']} on {host}:{settings.get('PORT') or 5432}"
    return connection.vendor, f"PostgreSQL {version}, {where}; autovacuum {autovacuum}; statements {prepared}"


def make_users(tag: str, annotators: int) -> tuple[str, list[tuple[str, str]]]:
    """A manager and K annotators with tokens: (manager token, [(username, token)])."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    User = get_user_model()
    manager = User.objects.create_user(f"{tag}-manager", is_staff=True)  # staff may create studies; no password: tokens only
    people = [User.objects.create_user(f"{tag}-annotator{i}") for i in range(annotators)]
    return Token.objects.create(user=manager).key, [(u.username, Token.objects.create(user=u).key) for u in people]


def cleanup(tag: str, study_id: int | None) -> None:
    from django.contrib.auth import get_user_model

    from annotate.models import Study

    if study_id is not None:
        Study.objects.filter(pk=study_id).delete()
    get_user_model().objects.filter(username__startswith=f"{tag}-").delete()


def check_labels(study_id: int, overlap: int) -> dict:
    from django.db.models import Count, Max, Q

    from annotate.models import Annotation, Assignment, Query

    queries = Query.objects.filter(study_id=study_id).aggregate(
        most=Max("label_count"), over=Count("id", filter=Q(label_count__gt=overlap))
    )
    return {
        "annotations": Annotation.objects.filter(query__study_id=study_id).count(),
        "most_labels_on_a_query": queries["most"] or 0,
        "queries_over_overlap": queries["over"],
        "active_assignments": Assignment.objects.filter(query__study_id=study_id, status="active").count(),
    }


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="use this running server (http://127.0.0.1:PORT) instead of starting gunicorn")
    parser.add_argument("--queries", type=int, default=2000, metavar="N", help="pairwise queries to import (default 2000)")
    parser.add_argument("--clients", type=int, default=8, metavar="K", help="concurrent annotators (default 8)")
    parser.add_argument("--labels", type=int, default=2000, metavar="M", help="labels to submit (default 2000)")
    parser.add_argument("--workers", type=int, default=cores() * 2, help=f"gunicorn workers (default 2 x cores = {cores() * 2})")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per gunicorn worker; above 1, gthread workers (default 1: sync)"
    )
    parser.add_argument("--import-batch", type=int, default=500, help="records per import request (default 500)")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop the labelling phase after this long (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--combined", action="store_true", help="submit with ?next=1, so each label is one request (the first next aside)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the study and users it made")
    parser.add_argument(
        "--label-studio-rate",
        type=float,
        metavar="LABELS_PER_S",
        help=f"Label Studio's submits/s measured on this machine (default: the trial's {LABEL_STUDIO_SUBMITS_PER_S:.0f}, "
        "a reference figure)",
    )
    args = parser.parse_args(argv)
    for name in ("queries", "clients", "labels", "workers", "threads", "import_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.labels > args.queries:
        parser.error("--labels cannot exceed --queries: with overlap 1 each query takes one label")
    if args.url:
        parts = urlsplit(args.url)
        if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS or parts.path not in ("", "/"):
            parser.error("--url must be http://127.0.0.1:PORT (this benchmark only talks to 127.0.0.1)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below stops gunicorn
    setup_django()
    vendor, database = database_description()

    server = None
    tag = f"bench-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
    study_id = None
    try:
        if args.url:
            port = urlsplit(args.url).port or 80
            where = f"{args.url} (given with --url)"
        else:
            subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
            server = Server(args.workers, args.threads)
            server.start()
            port = server.port
            threads = f" -k gthread --threads {args.threads}" if args.threads > 1 else ""
            where = f"gunicorn annotate.wsgi:application -w {args.workers}{threads} on http://127.0.0.1:{port} (started here)"
        host = "127.0.0.1"

        print("Preflab web load benchmark")
        print(f"  server    {where}")
        print(f"  database  {database}")
        print(
            f"  machine   {cores()} of {os.cpu_count()} CPU cores for this process and its server, "
            f"Python {sys.version.split()[0]}, clients are threads of this process"
        )
        print(f"  speed     a pure-Python reference loop (10^6 additions) takes {reference_loop_ms():.0f} ms here")
        print(f"  workload  N={args.queries} queries, K={args.clients} annotators, M={args.labels} labels, overlap 1")
        if vendor != "postgresql":
            print("  note      the targets are for PostgreSQL; set DATABASE_URL=postgres://... to compare with them")
        sys.stdout.flush()

        manager_token, annotators = make_users(tag, args.clients)
        manager = ApiClient(host, port, manager_token)
        study = manager.json("POST", "/api/v1/studies/", {"name": f"Web load {tag}", "overlap": 1}, expect=(201,))
        study_id = study["id"]
        for username, _ in annotators:
            manager.json(
                "POST", f"/api/v1/studies/{study_id}/members/", {"username": username, "role": "annotator"}, expect=(201,)
            )

        # 1. Import ------------------------------------------------------------------------
        records = import_records(args.queries, args.seed)
        batches = [records[i : i + args.import_batch] for i in range(0, len(records), args.import_batch)]
        bodies = ["\n".join(json.dumps(r) for r in batch).encode() for batch in batches]
        created = 0
        started = time.perf_counter()
        with tqdm(total=args.queries, desc="import", unit="query", file=sys.stderr, mininterval=0.5) as bar:
            for batch, body in zip(batches, bodies, strict=True):
                try:
                    status, _, reply = manager.request(
                        "POST", f"/api/v1/studies/{study_id}/import/", body, "application/x-ndjson"
                    )
                except OSError as exc:
                    status, reply = None, str(exc).encode()
                if status not in (200, 201):  # 200: nothing new in this batch
                    raise SystemExit(
                        f"import of {len(body) / 1e6:.1f} MB answered {status}: {reply[:300].decode(errors='replace')}\n"
                        "Django refuses a request body over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB unless set), "
                        "often by closing the connection; use a smaller --import-batch."
                    )
                created += json.loads(reply)["queries_created"]
                bar.update(len(batch))
        import_s = time.perf_counter() - started
        megabytes = sum(len(b) for b in bodies) / 1e6

        # 2. Label -------------------------------------------------------------------------
        run = LabelRun(wanted=args.labels, deadline=time.monotonic() + args.max_seconds)
        meter = CpuMeter(server.process.pid if server is not None else None)
        with tqdm(total=args.labels, desc="labels", unit="label", file=sys.stderr, mininterval=0.5) as bar:
            loops = [
                functools.partial(
                    annotator_loop, ApiClient(host, port, token), study_id, run, bar, args.seed * 1000 + i, combined=args.combined
                )
                for i, (_, token) in enumerate(annotators)
            ]
            label_s, cpu = label_phase(loops, run, meter)

        # 3. Export ------------------------------------------------------------------------
        manager.connection.close()  # idle through the labelling: the server may have dropped it
        started = time.perf_counter()
        manager.connection.request("GET", f"/api/v1/studies/{study_id}/export/?format=trl", headers=manager.headers)
        reply = manager.connection.getresponse()
        first_byte_s = time.perf_counter() - started
        expected_rows = int(reply.headers.get("X-Preflab-Rows", "0"))
        rows = 0
        size = 0
        with tqdm(total=expected_rows, desc="export", unit="row", file=sys.stderr, mininterval=0.5) as bar:
            while chunk := reply.read(1 << 16):
                lines = chunk.count(b"\n")
                rows += lines
                size += len(chunk)
                bar.update(lines)
        export_s = time.perf_counter() - started
        if reply.status != 200:
            raise SystemExit(f"export answered {reply.status}")
        manager.close()

        checks = check_labels(study_id, 1)

        # Figures --------------------------------------------------------------------------
        submits_per_s = run.done / label_s if label_s else math.nan
        p95_round = percentile(run.round_ms, 95)
        label_studio = args.label_studio_rate or LABEL_STUDIO_SUBMITS_PER_S
        source = "given with --label-studio-rate" if args.label_studio_rate else "the trial's figure, not measured here"
        ratio = submits_per_s / label_studio
        target_rate = (
            f"{ratio:.1f}x Label Studio's {label_studio:g} labels/s ({source}); "
            f"target >= {TARGET_RATIO:.0f}x with K={TARGET_CLIENTS}: {verdict(ratio >= TARGET_RATIO)}"
        )
        print()
        print(
            f"import    {created} queries in {import_s:.2f} s = {created / import_s:.0f} queries/s "
            f"({len(batches)} requests of <= {args.import_batch} records, {megabytes:.1f} MB)"
        )
        print(
            f"labels    {run.done} labels by {args.clients} annotators in {label_s:.2f} s "
            f"= {submits_per_s:.0f} submits/s   {target_rate}"
        )
        next_name = "next (GET)" if args.combined else "next"
        for name, values in ((next_name, run.next_ms), ("submit", run.submit_ms), ("next+submit", run.round_ms)):
            line = latency_line(name, values)
            if name == "next+submit":
                line += f"   target p95 <= {TARGET_P95_MS:.0f} ms: {verdict(p95_round <= TARGET_P95_MS)}"
            print(line)
        if cpu.machine_busy is not None:
            print(f"  cpu       machine {cpu.machine_busy * 100:.0f}% busy across its {os.cpu_count()} cores")
        if run.done:
            per_label = {
                "gunicorn": cpu.server_s,
                "PostgreSQL": cpu.database_s if vendor == "postgresql" else None,
                "clients": cpu.clients_s,
            }
            parts = ", ".join(f"{name} {sec / run.done * 1000:.1f} ms" for name, sec in per_label.items() if sec is not None)
            print(f"  cpu/label {parts} (CPU time, all processes of each)")
            if cpu.server_s is not None and per_label["PostgreSQL"] is not None:
                # What a server of more cores than this one needs: the clients do not count there.
                serving_ms = (cpu.server_s + cpu.database_s) / run.done * 1000
                print(
                    f"  capacity  {serving_ms:.1f} ms of gunicorn and PostgreSQL CPU per label: "
                    f"{TARGET_SUBMITS_PER_S:.0f} submits/s keeps {serving_ms * TARGET_SUBMITS_PER_S / 1000:.1f} cores busy "
                    f"with them alone; this machine has {cores()}"
                )
        if run.exhausted and run.done < args.labels:
            print("  note      the pool ran out before M labels (GET next answered 204)")
        if run.stop.is_set() and not run.exhausted and run.done < args.labels:
            print(f"  note      stopped early after {args.max_seconds:.0f} s or too many errors")
        for what, count in run.errors.most_common(5):
            print(f"  errors    {count} x {what}")
        print(
            f"export    {rows} TRL rows ({size / 1e6:.1f} MB) in {export_s:.2f} s = {rows / export_s:.0f} rows/s, "
            f"first byte after {first_byte_s * 1000:.0f} ms (X-Preflab-Rows says {expected_rows})"
        )
        print(
            f"checks    {checks['annotations']} annotations stored; most labels on one query: {checks['most_labels_on_a_query']} "
            f"(overlap 1, {checks['queries_over_overlap']} over); {checks['active_assignments']} assignments still active"
        )
        ok = run.done == args.labels and not run.errors and checks["queries_over_overlap"] == 0 and rows == expected_rows
        return 0 if ok else 1
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            try:
                cleanup(tag, study_id)
            except Exception as exc:  # a failed clean-up must not hide the figures
                print(f"clean-up failed: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
