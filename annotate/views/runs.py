"""A training run's page, whose progress panel polls itself until the run finishes."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate import access
from annotate.errors import PreflabError
from annotate.metric_words import metric_words
from annotate.models import ModelVersion, TrainingRun
from annotate.views.errors import page
from annotate.views.nav import with_perms


def duration_text(seconds: float | None) -> str:
    """A short human duration: '45 s', '3 min 20 s', '2 h 5 min'."""
    if seconds is None:
        return ""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


MAX_LISTED = 20  # a long list (a selection's picks) shows its first items and its length; the API has them all


def metric_text(value, *, counts: bool = False) -> str:
    """A metric for display: floats to four significant figures, tables as `key: value` pairs, None as ''.

    With `counts`, pairs are (agreed, compared) and read as fractions: per-annotator agreement.
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, dict):
        pairs = (f"{key}: {metric_text(item, counts=counts)}" for key, item in sorted(value.items()))
        return " · ".join(pairs) or "none"
    if isinstance(value, (list, tuple)):
        if counts and len(value) == 2:
            return f"{value[0]}/{value[1]}"
        shown = ", ".join(metric_text(item) for item in value[:MAX_LISTED])
        return shown if len(value) <= MAX_LISTED else f"{shown}, … ({len(value)} in all)"
    return json.dumps(value, sort_keys=True)


def metric_rows(metrics: dict | None) -> list[dict]:
    """One row per metric: its name, words for it (annotate/metric_words.py) and its value as text."""
    return [
        {"name": name, "words": metric_words(name), "value": named_metric_text(name, value)}
        for name, value in sorted((metrics or {}).items())
    ]


def named_metric_text(name: str, value) -> str:
    return metric_text(value, counts=name.endswith("_agreement"))


# Below this many held-out comparisons, a run's accuracy says little; the page says so.
FEW_HELD_OUT = 30


def held_out_count(metrics: dict | None) -> int | None:
    """How many held-out items a run's metrics were measured on, where the metrics say."""
    metrics = metrics or {}
    count = metrics.get("n_eval_comparisons", metrics.get("n_eval"))
    return count if isinstance(count, int) else None


def run_context(run: TrainingRun) -> dict:
    version = ModelVersion.objects.filter(run=run).first()
    held_out = held_out_count(run.metrics)
    return {
        "few_held_out": held_out if held_out is not None and held_out < FEW_HELD_OUT else None,
        "run": run,
        "study": run.study,
        "version": version,
        "eta": duration_text(run.eta_seconds),
        "metrics": metric_rows(run.metrics),
        "version_metrics": metric_rows(version.metrics) if version else [],
        "can_cancel": not run.is_finished and "train" in getattr(run.study, "perms", ()),
    }


def render_run(request: HttpRequest, run_id: int, template: str) -> HttpResponse:
    """The run's page, or the part of it named in `template`, for anyone who may see its study."""
    run = access.get_run(request.user, run_id)
    with_perms(run.study, access.role_in(request.user, run.study))
    return render(request, template, run_context(run))


@require_GET
@page
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    return render_run(request, run_id, "annotate/run_detail.html")


@require_POST
@page
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    """Ask the run to stop; its worker checks between steps and registers nothing."""
    from annotate.services.training import training_run_cancel

    run = access.get_run(request.user, run_id, "train")
    try:
        training_run_cancel(run=run)
    except PreflabError as exc:
        messages.error(request, exc.message)
    return redirect("run-detail", run_id=run.pk)


@require_GET
@page
def run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    """The progress part of the run's page, which it polls while the run goes on."""
    return render_run(request, run_id, "annotate/run_detail.html#run-progress")
