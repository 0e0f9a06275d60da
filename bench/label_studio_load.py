"""Label Studio's side of web_load.py: the same workload of next + submit, so the ratio is measured on one machine.

Run by hand against a running Label Studio (never from the tests); see bench/README.md for setting
one up on PostgreSQL beside Preflab:

    .venv/bin/python bench/label_studio_load.py --url http://127.0.0.1:8090 --token MANAGER_TOKEN \\
        --annotator-tokens FILE        # one annotator's API token a line; K = the number of lines

It imports web_load.py's records (a prompt and two responses) as N tasks of a new project with one
annotation per task, then K threads, each an annotator with its own token and keep-alive
connection, loop `GET /api/projects/{id}/next/` + `POST /api/tasks/{id}/annotations/` until M
labels are in: web_load.py's label phase, with Label Studio's calls for "next" and "submit". It
prints labels/s and the latencies, and the figure to give web_load.py as `--label-studio-rate`.
The project is deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from import_speed import LABEL_STUDIO_CONFIG
from tqdm import tqdm
from web_load import (
    LOCAL_HOSTS,
    ApiClient,
    CpuMeter,
    LabelRun,
    cores,
    import_records,
    label_phase,
    latency_line,
    reference_loop_ms,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the running Label Studio, http://127.0.0.1:PORT")
    parser.add_argument("--token", required=True, help="an API token of a user who may create projects")
    parser.add_argument("--annotator-tokens", required=True, type=Path, help="a file of annotators' API tokens, one a line")
    parser.add_argument("--queries", type=int, default=2000, metavar="N", help="tasks to import (default 2000)")
    parser.add_argument("--labels", type=int, default=2000, metavar="M", help="labels to submit (default 2000)")
    parser.add_argument("--import-batch", type=int, default=500, help="tasks per import request (default 500)")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop the labelling phase after this long")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the project")
    args = parser.parse_args(argv)
    parts = urlsplit(args.url)
    if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS:
        parser.error("--url must be http://127.0.0.1:PORT (this benchmark only talks to 127.0.0.1)")
    args.tokens = [line.strip() for line in args.annotator_tokens.read_text().splitlines() if line.strip()]
    if not args.tokens:
        parser.error(f"{args.annotator_tokens} holds no token")
    for name in ("queries", "labels", "import_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.labels > args.queries:
        parser.error("--labels cannot exceed --queries: with one annotation per task each task takes one label")
    return args


def annotator_loop(client: ApiClient, project_id: int, run: LabelRun, bar: tqdm, seed: int, start: threading.Barrier) -> None:
    """next + submit until the run has its labels, as web_load.annotator_loop does against Preflab."""
    rng = random.Random(seed)
    try:
        start.wait()
        while run.take_ticket():
            t0 = time.perf_counter()
            status, _, body = client.request("GET", f"/api/projects/{project_id}/next/")
            t1 = time.perf_counter()
            if status == 404:  # "There are no tasks for ..."
                run.ran_out()
                return
            if status != 200:
                run.error("next", status, body)
                continue
            task = json.loads(body)
            choice = rng.choices(["a", "b", "tie"], weights=[45, 45, 10])[0]
            payload = {
                "result": [{"from_name": "choice", "to_name": "prompt", "type": "choices", "value": {"choices": [choice]}}],
                "lead_time": round(rng.uniform(2, 20), 3),
            }
            path = f"/api/tasks/{task['id']}/annotations/?project={project_id}"
            status, _, body = client.request("POST", path, json.dumps(payload).encode(), "application/json")
            t2 = time.perf_counter()
            if status != 201:
                run.error("submit", status, body)
                continue
            run.record(t0, t1, t2)
            bar.update(1)
    except Exception as exc:
        run.failed(exc)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host, port = "127.0.0.1", urlsplit(args.url).port or 80
    clients = len(args.tokens)
    print("Label Studio web load benchmark (web_load.py's workload)")
    print(f"  server    {args.url} (running; its processes are not counted below)")
    print(f"  machine   {cores()} of {os.cpu_count()} CPU cores; clients are threads of this process")
    print(f"  speed     a pure-Python reference loop (10^6 additions) takes {reference_loop_ms():.0f} ms here")
    print(f"  workload  N={args.queries} tasks, K={clients} annotators, M={args.labels} labels, one annotation per task")
    sys.stdout.flush()

    manager = ApiClient(host, port, args.token)
    title = f"Preflab web load {time.strftime('%Y%m%d%H%M%S')}"
    project = manager.json(
        "POST", "/api/projects", {"title": title, "label_config": LABEL_STUDIO_CONFIG, "maximum_annotations": 1}, expect=(201,)
    )
    try:
        records = import_records(args.queries, args.seed)
        tasks = [{"prompt": r["prompt"], "a": r["responses"][0], "b": r["responses"][1]} for r in records]
        started = time.perf_counter()
        with tqdm(total=len(tasks), desc="import", unit="task", file=sys.stderr, mininterval=0.5) as bar:
            for i in range(0, len(tasks), args.import_batch):
                batch = tasks[i : i + args.import_batch]
                status, _, reply = manager.request(
                    "POST", f"/api/projects/{project['id']}/import", json.dumps(batch).encode(), "application/json"
                )
                if status != 201:
                    raise SystemExit(f"Label Studio's import answered {status}: {reply[:300].decode(errors='replace')}")
                bar.update(len(batch))
        import_s = time.perf_counter() - started

        run = LabelRun(wanted=args.labels, deadline=time.monotonic() + args.max_seconds)
        with tqdm(total=args.labels, desc="labels", unit="label", file=sys.stderr, mininterval=0.5) as bar:
            loops = [
                functools.partial(annotator_loop, ApiClient(host, port, token), project["id"], run, bar, args.seed * 1000 + i)
                for i, token in enumerate(args.tokens)
            ]
            label_s, cpu = label_phase(loops, run, CpuMeter(None))

        rate = run.done / label_s if label_s else math.nan
        print()
        print(f"import    {len(tasks)} tasks in {import_s:.2f} s = {len(tasks) / import_s:.0f} tasks/s")
        print(f"labels    {run.done} labels by {clients} annotators in {label_s:.2f} s = {rate:.1f} submits/s")
        for name, values in (("next", run.next_ms), ("submit", run.submit_ms), ("next+submit", run.round_ms)):
            print(latency_line(name, values))
        if cpu.machine_busy is not None:
            print(f"  cpu       machine {cpu.machine_busy * 100:.0f}% busy")
        if run.exhausted and run.done < args.labels:
            print("  note      the project ran out of tasks before M labels (next answered 404)")
        for what, count in run.errors.most_common(5):
            print(f"  errors    {count} x {what}")
        print(f"then      web_load.py --label-studio-rate {rate:.1f} (with the same --queries, --labels and K)")
        return 0 if run.done == args.labels and not run.errors else 1
    finally:
        if not args.keep:
            manager.connection.close()  # idle through the labelling: the server may have dropped it
            manager.json("DELETE", f"/api/projects/{project['id']}/", expect=(204,))
        manager.close()


if __name__ == "__main__":
    sys.exit(main())
