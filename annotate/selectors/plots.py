"""The dashboard's plots: each from figures the dashboard has already read, or from one query."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from annotate.charts import Bar, column_chart, hbar_chart
from annotate.models import Round, Study
from annotate.selectors.gold import GoldAccuracy
from annotate.selectors.studies import current_annotations

DAYS = 30
# The agreement figures drawn, in the order the agreement card lists them.
FIGURES = (("raw_agreement", "raw agreement"), ("fleiss_kappa", "Fleiss' κ"), ("krippendorff_alpha", "Krippendorff's α"))


def labels_per_day(study: Study, *, days: int = DAYS) -> list[tuple[str, int]]:
    """Current labels given on each of the last `days` days (today included), in one query; days without labels count 0."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    counts = dict(
        current_annotations(study)
        .filter(created_at__date__gte=first)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("day", "n")
    )
    return [(f"{day:%b} {day.day}", counts.get(day, 0)) for day in (first + timedelta(d) for d in range(days))]


def agreement_bars(agreement: dict) -> list[Bar]:
    """Each defined agreement figure of each kind, with the number of items behind it."""
    return [
        Bar(f"{name} · {short}", figure["value"], f"{figure['value']:.2f} ({figure['items']})")
        for name, kind in agreement["kinds"].items()
        for key, short in FIGURES
        if (figure := kind[key])["value"] is not None
    ]


def strategies_compared(rounds: list[Round]) -> dict:
    """The newest measured accuracy of each strategy, with its interval and labels; a note for one strategy."""
    newest: dict[str, Round] = {}
    for r in rounds:
        if r.heldout_accuracy is not None and r.labels is not None:
            newest[r.chosen_by or r.strategy] = r
    title = "Held-out accuracy of the newest model each strategy's rounds led to"
    if len(newest) < 2:
        return {"title": title, "empty": True, "note": "Only one strategy has chosen rounds so far: nothing to compare."}
    bars = [
        Bar(
            f"{name} ({r.labels} labels)",
            r.heldout_accuracy,
            f"{r.heldout_accuracy:.2f}",
            r.heldout_accuracy_low,
            r.heldout_accuracy_high,
        )
        for name, r in sorted(newest.items())
    ]
    return hbar_chart(bars, title=title, hi=1.0)


def dashboard_plots(
    *, study: Study, annotators: list[dict], agreement: dict, gold: list[GoldAccuracy], flags: dict, rounds: list[Round]
) -> dict:
    """Every plot the dashboard draws; only labels per day reads the database (one query)."""
    return {
        "days": column_chart(labels_per_day(study), title=f"Labels per day, last {DAYS} days"),
        "annotators": hbar_chart(
            [Bar(row["username"], row["labels"], str(row["labels"])) for row in annotators], title="Labels per annotator"
        ),
        "agreement": hbar_chart(
            agreement_bars(agreement), title="Agreement per kind of feedback (items behind each figure)", lo=0.0, hi=1.0
        ),
        "gold": hbar_chart(
            [Bar(row.username, row.accuracy, f"{row.accuracy:.2f}", row.low, row.high) for row in gold],
            title="Gold accuracy per annotator, with its 95% Wilson interval",
            hi=1.0,
        ),
        "flags": hbar_chart(
            [Bar(row["annotator"], len(row["raised"]), str(len(row["raised"]))) for row in flags["annotators"]],
            title=f"Bias flags raised per annotator (of {len(flags['flags'])})",
            hi=float(len(flags["flags"])),
        ),
        "strategies": strategies_compared(rounds),
    }
