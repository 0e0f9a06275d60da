"""The `preflab` commands: import, export, training runs and the round loop, over the REST API.

Each command is a function of (api, args) that prints what happened and returns the exit status.
Progress bars and messages go to standard error, so standard output carries only the results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from http.client import HTTPException
from pathlib import Path

from tqdm import tqdm

from annotate.cli.api import DEFAULT_URL, Api, ApiError, ClientError, MultipartFile, api_from_env

FINISHED = ("succeeded", "failed", "cancelled")
INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C
EXPORT_PIECE = 64 * 1024


def parse_setting(text: str) -> tuple[str, object]:
    """A `--set key=value` pair; the value is read as JSON where it is JSON (3, 0.5, true), else kept as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {text!r}: write key=value, e.g. --set epochs=3")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def table(rows: list[list[object]], header: list[str]) -> None:
    """Print rows under a header, each column as wide as its widest cell."""
    cells = [header, *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def find_study(api: Api, ref: str) -> dict:
    """The study with this id, or else with exactly this name among the caller's studies."""
    if ref.isdigit():
        return api.call("GET", f"studies/{ref}")
    matches = [study for study in api.call("GET", "studies", params={"archived": "1"}) if study["name"] == ref]
    if len(matches) > 1:
        ids = ", ".join(str(s["id"]) for s in matches)
        raise ClientError(f"Several of your studies are named {ref!r}; give its id instead ({ids}).")
    if not matches:
        raise ClientError(f"No study of yours has the id or name {ref!r}; `preflab studies` lists them.")
    return matches[0]


def cmd_studies(api: Api, args: argparse.Namespace) -> int:
    table([[s["id"], s["my_role"], s["name"]] for s in api.call("GET", "studies")], ["ID", "ROLE", "NAME"])
    return 0


def cmd_import(api: Api, args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise ClientError(f"No file at {path}.")
    study = find_study(api, args.study)
    with tqdm(unit="B", unit_scale=True, desc="uploading", file=sys.stderr, disable=args.quiet) as bar:
        upload = MultipartFile(path, progress=bar.update)
        bar.total = upload.file_size
        headers = {"Content-Type": upload.content_type, "Content-Length": str(upload.length)}
        # The server checks every record before it stores any, after the upload: a bad file stores nothing.
        endpoint = f"studies/{study['id']}/import"
        with api.open("POST", endpoint, params={"format": args.format}, data=upload, headers=headers) as reply:
            new, counts = reply.status == 201, json.loads(reply.read())
    words = ", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in counts.items())
    print(f"Imported {path.name} into {study['name']!r} — {words}" + ("" if new else " (nothing new)"))
    return 0


def cmd_export(api: Api, args: argparse.Namespace) -> int:
    study = find_study(api, args.study)
    params = {"format": args.format, "sources": args.sources, "aggregate": args.aggregate}
    output: Path | None = args.output
    with api.open("GET", f"studies/{study['id']}/export", params=params) as reply:
        counts = {
            name[len("x-preflab-") :].lower().replace("-", " "): value
            for name, value in reply.headers.items()
            if name.lower().startswith("x-preflab-")
        }
        total = int(counts["rows"]) if counts.get("rows", "").isdigit() else None
        with tqdm(total=total, unit="row", desc="exporting", file=sys.stderr, disable=args.quiet) as bar:
            if output is None:
                copy_rows(reply, sys.stdout.buffer, bar, total)
                sys.stdout.flush()
            else:
                # Written beside the target and renamed, so a broken download never leaves half a file.
                partial = output.with_name(output.name + ".partial")
                try:
                    with partial.open("wb") as handle:
                        copy_rows(reply, handle, bar, total)
                except BaseException:
                    partial.unlink(missing_ok=True)
                    raise
                partial.replace(output)
    words = ", ".join(f"{name}: {value}" for name, value in counts.items())
    say(f"Exported {study['name']!r} as {args.format}" + (f" to {output}" if output else "") + f" — {words}")
    return 0


def copy_rows(reply, handle, bar: tqdm, total: int | None) -> None:
    """Copy the streamed JSON lines to `handle`, counting rows as their line ends arrive.

    A stream that stops short of the `total` rows its headers announced is an error: a server that
    fails mid-stream can only close the connection, which otherwise reads as a normal end.
    """
    rows = 0  # counted here: a disabled bar counts nothing
    while True:
        try:
            piece = reply.read(EXPORT_PIECE)
        except (OSError, HTTPException) as exc:  # the server or the network gave out mid-stream
            raise ClientError(f"The export broke off after {rows} rows: {exc!r}.") from None
        if not piece:
            break
        handle.write(piece)
        rows += piece.count(b"\n")
        bar.update(piece.count(b"\n"))
    if total is not None and rows != total:
        raise ClientError(f"The export broke off after {rows} of its {total} rows.")


def cmd_train(api: Api, args: argparse.Namespace) -> int:
    try:
        config = dict(parse_setting(item) for item in args.set)
    except ValueError as exc:
        raise ClientError(str(exc)) from None
    study = find_study(api, args.study)
    run = api.call("POST", f"studies/{study['id']}/runs", body={"kind": args.kind, "config": config})
    print(f"Run {run['id']} ({run['kind']}) for {study['name']!r}: {json.dumps(run['config'], sort_keys=True)}", flush=True)
    if not args.wait:
        say(f"Follow it with: preflab run {run['id']} --wait")
        return 0
    return follow(api, run["id"], poll=args.poll, quiet=args.quiet)


def cmd_run(api: Api, args: argparse.Namespace) -> int:
    if args.cancel:
        run = api.call("POST", f"runs/{args.run}/cancel")
        print(f"Run {run['id']} {run['status']}.")
        return 0
    if args.wait:
        return follow(api, args.run, poll=args.poll, quiet=args.quiet)
    run = api.call("GET", f"runs/{args.run}")
    print(json.dumps(run, indent=2, sort_keys=True))
    return 0


def follow(api: Api, run_id: int, *, poll: float, quiet: bool) -> int:
    """Show a run's steps and loss until it finishes; 0 when it succeeded, 1 when not, 130 on Ctrl-C."""
    try:
        print(f"Following run {run_id}; Ctrl-C to stop following.", flush=True)
        with tqdm(total=1, unit="step", desc="waiting for a worker", file=sys.stderr, disable=quiet) as bar:
            while True:
                run = api.call("GET", f"runs/{run_id}")
                if run["total_steps"]:
                    bar.total = run["total_steps"]
                    bar.set_description("training")
                    bar.update(run["step"] - bar.n)
                    if run["loss"] is not None:
                        bar.set_postfix(loss=f"{run['loss']:.4f}")
                if run["status"] in FINISHED:
                    break
                time.sleep(poll)
    except KeyboardInterrupt:
        return offer_cancel(api, run_id)
    return report_run(run)


def offer_cancel(api: Api, run_id: int) -> int:
    """After Ctrl-C: on a terminal, ask whether to cancel the run too; elsewhere cancel it."""
    if sys.stdin.isatty():
        # Asked on standard error: standard output carries only results.
        print(f"\nCancel run {run_id} on the server too? [y/N] ", end="", file=sys.stderr, flush=True)
        try:
            wanted = sys.stdin.readline().strip().lower() in {"y", "yes"}
        except KeyboardInterrupt:  # a second Ctrl-C: leave it running
            wanted = False
        if not wanted:
            say(f"Run {run_id} goes on; follow it again with: preflab run {run_id} --wait")
            return INTERRUPTED
    try:
        run = api.call("POST", f"runs/{run_id}/cancel")
        say(f"Cancelled run {run_id}: {run['status']}.")
    except ApiError as exc:  # it finished meanwhile (409), say so
        say(f"Run {run_id} was not cancelled: {exc.detail}")
    return INTERRUPTED


def report_run(run: dict) -> int:
    if run["status"] != "succeeded":
        say(f"Run {run['id']} {run['status']}: {run['error'] or run['message']}")
        return 1
    version = run["model_version"]
    if version is None:
        print(f"Run {run['id']} succeeded.")
        return 0
    print(f"Run {run['id']} succeeded: registered {version['kind']} v{version['version']} at {version['artifact_path']}")
    for name, value in sorted(version["metrics"].items()):
        if not isinstance(value, dict | list):
            print(f"  {name}: {value}")
    return 0


def cmd_runs(api: Api, args: argparse.Namespace) -> int:
    study = find_study(api, args.study)
    runs = api.call("GET", f"studies/{study['id']}/runs")
    rows = [
        [
            r["id"],
            r["kind"],
            r["status"],
            f"{r['step']}/{r['total_steps']}" if r["total_steps"] else "",
            f"{r['loss']:.4f}" if r["loss"] is not None else "",
            r["created_at"][:19].replace("T", " "),
            r["error"] or r["message"],
        ]
        for r in runs
    ]
    table(rows, ["ID", "KIND", "STATUS", "STEP", "LOSS", "CREATED", "MESSAGE"])
    return 0


def cmd_rounds(api: Api, args: argparse.Namespace) -> int:
    study = find_study(api, args.study)
    path = f"studies/{study['id']}/rounds"
    if args.action == "start":
        started = api.call("POST", path)
        print(f"Round {started['number']} ({started['strategy']}): {started['status']}. {started.get('message') or ''}".rstrip())
    elif args.action in ("pause", "resume"):
        loop = api.call("POST", f"{path}/{args.action}")
        print(f"Loop {loop['loop_status']}, current round {loop['current_round']}.")
    else:
        history = api.call("GET", path)
        if not history:
            print(f"No rounds yet; `preflab rounds {args.study} start` starts the loop.")
            return 0
        rows = [
            [
                r["number"],
                r["status"],
                r["strategy"],
                f"{r['selected']}/{r['size']}",
                r["labels"],
                "" if r["heldout_accuracy"] is None else f"{r['heldout_accuracy']:.3f}",
                r["message"],
            ]
            for r in history
        ]
        table(rows, ["ROUND", "STATUS", "STRATEGY", "SELECTED", "LABELS", "HELD-OUT ACC", "MESSAGE"])
    return 0


def cmd_status(api: Api, args: argparse.Namespace) -> int:
    study = find_study(api, args.study)
    if args.action != "show":
        study = {**study, **api.call("POST", f"studies/{study['id']}/{args.action}")}
    print(f"{study['name']}: {study['status']}.")
    return 0


def connection_options(suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name; after it (suppress=True) they are unset unless given."""
    options = argparse.ArgumentParser(add_help=False)

    def default(value):
        return argparse.SUPPRESS if suppress else value

    options.add_argument("--url", default=default(None), help=f"the server (default: $PREFLAB_URL or {DEFAULT_URL})")
    options.add_argument("--token", default=default(None), help="an API token (default: $PREFLAB_TOKEN)")
    options.add_argument("--timeout", type=float, default=default(300.0), help="seconds to wait for each answer (300)")
    options.add_argument("-q", "--quiet", action="store_true", default=default(False), help="no progress bars")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="preflab",
        description="Preflab's command-line client: talks to a server's REST API with a token.",
        parents=[connection_options(suppress=False)],
    )
    common = connection_options(suppress=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    command("studies", cmd_studies, "list your studies and your role in each")
    sub = command("import", cmd_import, "upload a file into a study (all or nothing), with an upload bar")
    sub.add_argument("study", help="study id or exact name")
    sub.add_argument("file", type=Path)
    sub.add_argument("--format", default="jsonl", help="the server's import format: jsonl (default), fgrlhf, ...")
    sub = command("export", cmd_export, "download a study's labels as JSON lines, with a bar of rows")
    sub.add_argument("study", help="study id or exact name")
    sub.add_argument("--format", default="trl", help="trl (default), kto, rankings, spans, critiques, ratings, raw, fgrlhf")
    sub.add_argument("--sources", help="trl and kto only: comma-separated pairwise,ranking,revision")
    sub.add_argument("--aggregate", help="trl only: majority, dawid_skene or bt_reliability")
    sub.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    sub = command("train", cmd_train, "start a training run; with --wait follow it with a bar of steps")
    sub.add_argument("study", help="study id or exact name")
    sub.add_argument("--kind", default="reward", help="reward (default), span_reward, rating_reward")
    sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config value, repeatable")
    sub.add_argument("--wait", action="store_true", help="follow the run until it ends; Ctrl-C offers to cancel it")
    sub.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the run (1)")
    sub = command("run", cmd_run, "show one training run, follow it (--wait) or cancel it (--cancel)")
    sub.add_argument("run", type=int)
    action = sub.add_mutually_exclusive_group()
    action.add_argument("--wait", action="store_true", help="follow the run until it ends; Ctrl-C offers to cancel it")
    action.add_argument("--cancel", action="store_true")
    sub.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the run (1)")
    sub = command("runs", cmd_runs, "list a study's training runs, newest first")
    sub.add_argument("study", help="study id or exact name")
    sub = command("rounds", cmd_rounds, "a study's round loop: its history (status), or start, pause, resume")
    sub.add_argument("study", help="study id or exact name")
    sub.add_argument("action", nargs="?", default="status", choices=("status", "start", "pause", "resume"))
    sub = command("status", cmd_status, "whether a study serves queries (show), or pause, resume, archive, unarchive it")
    sub.add_argument("study", help="study id or exact name")
    sub.add_argument("action", nargs="?", default="show", choices=("show", "pause", "resume", "archive", "unarchive"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status: 0 done, 1 refused or failed, 2 bad arguments, 130 interrupted."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(api_from_env(args.url, args.token, args.timeout), args)
    except ClientError as exc:
        print(f"preflab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:  # `preflab export ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
