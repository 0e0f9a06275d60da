"""Import speed benchmark: N prompts with two responses each into a new study. Prints queries/s and the ratio to Label Studio.

Run by hand (never from the tests), against PostgreSQL:

    createdb -h 127.0.0.1 -U postgres preflab_bench        # once
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/preflab_bench DEBUG=0 SECRET_KEY=x \\
        .venv/bin/python bench/import_speed.py

The records are web_load.py's: a prompt of 80-400 characters and two responses of 500-1500, so
each makes one pairwise query. The file is imported through the service (`items_import`, what the
API, the dashboard and `manage.py import_items` call), then once more to time a re-import that
changes nothing. With --api it is also sent to a gunicorn it starts, as application/x-ndjson in
batches, as web_load.py's import phase does. Label Studio's rate is a reference figure unless
measured: see bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from urllib.parse import urlsplit

from web_load import (
    LOCAL_HOSTS,
    ApiClient,
    Server,
    cores,
    database_description,
    import_records,
    make_users,
    process_table,
    reference_loop_ms,
    setup_django,
)

# Label Studio 1.23.2 imported 2,860 to 2,911 tasks/s (2,885 on average) on the trial's machine:
# PostgreSQL, gunicorn -w 4, tasks of two texts. Not measured here unless --label-studio-rate says so.
LABEL_STUDIO_TASKS_PER_S = 2885.0
TARGET_RATIO = 10.0
# The same record as a Label Studio task: the prompt and both responses, with a choice between them.
LABEL_STUDIO_CONFIG = """<View>
  <Text name="prompt" value="$prompt"/>
  <Text name="a" value="$a"/>
  <Text name="b" value="$b"/>
  <Choices name="choice" toName="prompt"><Choice value="a"/><Choice value="b"/><Choice value="tie"/></Choices>
</View>"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=20_000, metavar="N", help="prompts to import (default 20000)")
    parser.add_argument(
        "--label-studio-rate",
        type=float,
        default=None,
        metavar="TASKS_PER_S",
        help=f"Label Studio's measured import rate on this machine (default: the trial's {LABEL_STUDIO_TASKS_PER_S:.0f}, "
        "a reference figure)",
    )
    parser.add_argument(
        "--label-studio",
        metavar="URL",
        help="measure the import of the same tasks into this running Label Studio (http://127.0.0.1:PORT) instead",
    )
    parser.add_argument("--label-studio-token", metavar="TOKEN", help="its legacy API token (Authorization: Token ...)")
    parser.add_argument("--api", action="store_true", help="also import through the API of a gunicorn started here")
    parser.add_argument(
        "--import-batch",
        type=int,
        default=1000,
        help="records per API request, ours with --api and Label Studio's (default 1000)",
    )
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the service import to FILE and print its top")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the studies it made")
    args = parser.parse_args(argv)
    if args.label_studio and (args.label_studio_rate or not args.label_studio_token):
        parser.error("--label-studio needs --label-studio-token, and replaces --label-studio-rate")
    if args.label_studio:
        parts = urlsplit(args.label_studio)
        if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS or not parts.port:
            parser.error("--label-studio must be http://127.0.0.1:PORT (this benchmark only talks to 127.0.0.1)")
    if args.prompts < 1 or args.import_batch < 1:
        parser.error("--prompts and --import-batch must be at least 1")
    return args


def ratio_line(rate: float, label_studio: float, source: str) -> str:
    ratio = rate / label_studio
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    return (
        f"  ratio     {ratio:.1f}x Label Studio's {label_studio:,.0f} tasks/s ({source}); "
        f"target >= {TARGET_RATIO:.0f}x: {verdict}"
    )


def backend_cpu_s() -> float | None:
    """CPU seconds so far of the PostgreSQL backend serving this process's connection; None off PostgreSQL or /proc."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    entry = process_table().get(pid)
    return entry[2] if entry else None


def copy_floor(lines: list[str]) -> tuple[float, float | None]:
    """Store the same lines as one text row each, nothing parsed or checked: what PostgreSQL alone takes.

    The table is an ordinary (logged) one with a primary key, like a Label Studio task table at its
    leanest, created and dropped here. (seconds, CPU seconds of the PostgreSQL backend or None).
    """
    from django.db import connection, transaction

    table = f"bench_copy_floor_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, data text NOT NULL)")
    try:
        database_before = backend_cpu_s()
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor, cursor.copy(f"COPY {table} (data) FROM STDIN") as copy:
            for line in lines:
                copy.write_row((line,))
        seconds = time.perf_counter() - started
        database_after = backend_cpu_s()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")
    database_s = None if database_before is None or database_after is None else database_after - database_before
    return seconds, database_s


def service_import(study, lines: list[str], profile: str | None):
    """(result, seconds, CPU seconds of this process, of its PostgreSQL backend or None, profiler or None)."""
    from annotate.services.items import items_import

    profiler = cProfile.Profile() if profile else None
    database_before, python_before = backend_cpu_s(), time.process_time()
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = items_import(study=study, lines=lines)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    python_s = time.process_time() - python_before
    database_after = backend_cpu_s()
    database_s = database_after - database_before if database_before is not None and database_after is not None else None
    return result, seconds, python_s, database_s, profiler


def api_import(study_id: int, token: str, port: int, bodies: list[bytes]) -> tuple[int, float]:
    client = ApiClient("127.0.0.1", port, token)
    created = 0
    started = time.perf_counter()
    for body in bodies:
        status, _, reply = client.request("POST", f"/api/v1/studies/{study_id}/import/", body, "application/x-ndjson")
        if status not in (200, 201):
            raise SystemExit(f"import answered {status}: {reply[:300].decode(errors='replace')}")
        created += json.loads(reply)["queries_created"]
    seconds = time.perf_counter() - started
    client.close()
    return created, seconds


def label_studio_import(url: str, token: str, records: list[dict], batch: int) -> tuple[int, float]:
    """Import the records as tasks into a new Label Studio project, timed; the project is deleted after. (tasks, seconds)"""
    client = ApiClient("127.0.0.1", urlsplit(url).port, token)
    title = f"Preflab import bench {uuid.uuid4().hex[:6]}"
    project = client.json("POST", "/api/projects", {"title": title, "label_config": LABEL_STUDIO_CONFIG}, expect=(201,))
    tasks = [{"prompt": r["prompt"], "a": r["responses"][0], "b": r["responses"][1]} for r in records]
    bodies = [json.dumps(tasks[i : i + batch]).encode() for i in range(0, len(tasks), batch)]
    created = 0
    try:
        started = time.perf_counter()
        for body in bodies:
            status, _, reply = client.request("POST", f"/api/projects/{project['id']}/import", body, "application/json")
            if status != 201:
                raise SystemExit(f"Label Studio's import answered {status}: {reply[:300].decode(errors='replace')}")
            created += json.loads(reply)["task_count"]
        seconds = time.perf_counter() - started
    finally:
        client.json("DELETE", f"/api/projects/{project['id']}/", expect=(204,))
        client.close()
    return created, seconds


def delete_studies(ids: list[int], prompts_at_a_time: int = 5000) -> None:
    """Delete studies a slice of prompts at a time: all 20,000 prompts at once binds more parameters than PostgreSQL takes."""
    from annotate.models import Prompt, Study

    for study_id in ids:
        prompt_ids = list(Prompt.objects.filter(study_id=study_id).values_list("pk", flat=True))
        for start in range(0, len(prompt_ids), prompts_at_a_time):
            Prompt.objects.filter(pk__in=prompt_ids[start : start + prompts_at_a_time]).delete()
    Study.objects.filter(pk__in=ids).delete()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_django()
    from django.contrib.auth import get_user_model

    from annotate.services.studies import study_create

    vendor, database = database_description()
    if args.label_studio_rate:
        label_studio, source = args.label_studio_rate, "given with --label-studio-rate"
    else:
        label_studio, source = LABEL_STUDIO_TASKS_PER_S, "the trial's figure on another machine, not measured here"
    tag = f"bench-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
    records = import_records(args.prompts, args.seed)
    lines = [json.dumps(r) for r in records]
    megabytes = sum(len(line) + 1 for line in lines) / 1e6

    print("Preflab import benchmark")
    print(f"  database  {database}")
    print(f"  machine   {cores()} of {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}")
    print(f"  load      {', '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min): other processes share these cores")
    print(f"  speed     a pure-Python reference loop (10^6 additions) takes {reference_loop_ms():.0f} ms here")
    print(f"  workload  N={args.prompts} prompts with 2 responses each ({megabytes:.1f} MB of JSON lines): N pairwise queries")
    if vendor != "postgresql":
        print("  note      the target is for PostgreSQL; set DATABASE_URL=postgres://... to compare with it")
    sys.stdout.flush()

    server = None
    manager_token, _ = make_users(tag, 0)
    manager = get_user_model().objects.get(username=f"{tag}-manager")
    studies = []
    try:
        if args.label_studio:
            tasks, ls_s = label_studio_import(args.label_studio, args.label_studio_token, records, args.import_batch)
            label_studio, source = tasks / ls_s, "measured here just before"
            print()
            print(
                f"Label Studio {tasks} tasks in {ls_s:.2f} s = {label_studio:,.0f} tasks/s "
                f"({-(-tasks // args.import_batch)} requests of <= {args.import_batch} tasks to {args.label_studio})"
            )
        study = study_create(creator=manager, name=f"Import speed {tag}")
        studies.append(study)
        result, seconds, python_s, database_s, profiler = service_import(study, lines, args.profile)
        print()
        print(
            f"service   {result.queries_created} queries in {seconds:.2f} s = {result.queries_created / seconds:,.0f} queries/s "
            f"({result.prompts_created} prompts, {result.responses_created} responses; {megabytes / seconds:.1f} MB/s)"
        )
        per_1000 = 1000 / result.queries_created
        database = f", its PostgreSQL backend {database_s * per_1000:.2f} s" if database_s is not None else ""
        print(f"  cpu       per 1000 queries: Python {python_s * per_1000:.2f} s{database}")
        print(ratio_line(result.queries_created / seconds, label_studio, source))
        again, again_s, *_ = service_import(study, lines, None)
        print(
            f"re-import {again.prompts_unchanged} prompts unchanged, {again.queries_created} queries created "
            f"in {again_s:.2f} s = {args.prompts / again_s:,.0f} prompts/s"
        )
        if vendor == "postgresql":
            floor_s, floor_database_s = copy_floor(lines)
            floor_rate = len(lines) / floor_s
            database = (
                f", PostgreSQL backend {floor_database_s * 1000 / len(lines):.2f} s per 1000"
                if floor_database_s is not None
                else ""
            )
            print(
                f"floor     the same {len(lines)} lines stored as one text row each, nothing parsed or checked: "
                f"{floor_s:.2f} s = {floor_rate:,.0f} rows/s{database}"
            )
            print(
                f"  ratio     the service runs at {result.queries_created / seconds / floor_rate:.0%} of this floor; "
                f"{TARGET_RATIO:.0f}x Label Studio ({TARGET_RATIO * label_studio:,.0f}/s) is "
                f"{TARGET_RATIO * label_studio / floor_rate:.1f}x the floor"
            )
        sys.stdout.flush()

        if args.api:
            study = study_create(creator=manager, name=f"Import speed API {tag}")
            studies.append(study)
            bodies = ["\n".join(lines[i : i + args.import_batch]).encode() for i in range(0, len(lines), args.import_batch)]
            server = Server(workers=cores() * 2)
            server.start()
            created, api_s = api_import(study.pk, manager_token, server.port, bodies)
            print(
                f"api       {created} queries in {api_s:.2f} s = {created / api_s:,.0f} queries/s "
                f"({len(bodies)} requests of <= {args.import_batch} records to gunicorn -w {server.workers})"
            )
            print(ratio_line(created / api_s, label_studio, source))

        if profiler is not None:
            profiler.dump_stats(args.profile)
            print()
            pstats.Stats(args.profile).sort_stats("cumulative").print_stats(25)
        return 0
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            delete_studies([s.pk for s in studies])
            get_user_model().objects.filter(username__startswith=f"{tag}-").delete()


if __name__ == "__main__":
    sys.exit(main())
