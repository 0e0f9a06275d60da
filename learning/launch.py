"""One entry point for every training job, in this process or as processes of their own.

`run_job` picks the trainer for a job's kind. Run as `python -m learning.launch` under
`torchrun` (or `accelerate launch`), the same job trains on several GPUs: the caller writes the
job as JSON, reads progress as `PROGRESS {...}` lines on standard output, asks for a stop by
creating the stop file, and reads the result from the result file, which only the main process
writes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from learning.data import PreferencePair, RankingExample, RatingExample, SpanExample
from learning.errors import TrainingStopped

STOPPED_EXIT_CODE = 3
PROGRESS_PREFIX = "PROGRESS "


def run_job(
    kind: str,
    config: dict,
    data: dict,
    *,
    output_dir: str | os.PathLike,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
):
    """Run a job of `kind` on `data` (plain learning dataclasses) and return its runner's result.

    data: the kind's `data_keys` (learning/jobs.py); any kind may add "eval_groups", a study's
    fixed evaluation split (group ids), which then replaces the config's own split. `config` is
    plain JSON, checked by the kind's config class.
    """
    from learning.jobs import job_config, job_kind, job_runner

    keys = job_kind(kind).data_keys
    hooks = {"output_dir": output_dir, "progress": progress, "should_stop": should_stop, "eval_groups": data.get("eval_groups")}
    return job_runner(kind)(config=job_config(kind, config), **{key: data[key] for key in keys}, **hooks)


def job_to_json(kind: str, config: dict, data: dict) -> str:
    """A job as JSON: dataclasses become objects, names stay as they are."""
    encoded = {
        name: [asdict(item) for item in value] if name in ("pairs", "rankings", "examples") else value
        for name, value in data.items()
    }
    return json.dumps({"kind": kind, "config": config, "data": encoded}, ensure_ascii=False)


def job_from_json(text: str) -> tuple[str, dict, dict]:
    job = json.loads(text)
    data = dict(job["data"])
    if "pairs" in data:
        data["pairs"] = [PreferencePair(**row) for row in data["pairs"]]
    if "rankings" in data:
        data["rankings"] = [RankingExample(**row) for row in data["rankings"]]
    if "examples" in data:
        if job["kind"] == "span_reward":
            data["examples"] = [SpanExample(**{**row, "spans": [tuple(s) for s in row["spans"]]}) for row in data["examples"]]
        else:
            data["examples"] = [RatingExample(**row) for row in data["examples"]]
    return job["kind"], job["config"], data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", type=Path, required=True, help="the job, as written by job_to_json")
    parser.add_argument("--output", type=Path, required=True, help="the artifact folder to write")
    parser.add_argument("--result", type=Path, required=True, help="where the main process writes the result")
    parser.add_argument("--stop-file", type=Path, required=True, help="training stops once this file exists")
    args = parser.parse_args(argv)
    main_process = os.environ.get("RANK", "0") == "0"

    def report(update: dict) -> None:
        if main_process:
            print(PROGRESS_PREFIX + json.dumps(update), flush=True)

    kind, config, data = job_from_json(args.job.read_text(encoding="utf-8"))
    try:
        result = run_job(kind, config, data, output_dir=args.output, progress=report, should_stop=args.stop_file.exists)
    except TrainingStopped as exc:
        print(str(exc), file=sys.stderr)
        return STOPPED_EXIT_CODE
    if main_process:
        partial = args.result.with_name(args.result.name + ".partial")
        partial.write_text(json.dumps(asdict(result)), encoding="utf-8")
        partial.replace(args.result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
