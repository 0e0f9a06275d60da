"""Reads for the study pages: dashboard counts, per-annotator figures, runs and model versions."""

from __future__ import annotations

from django.db.models import Count, F, Func, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from annotate.models import (
    Annotation,
    DatasetExport,
    Membership,
    ModelVersion,
    PairwiseChoice,
    Prompt,
    Query,
    Study,
    TrainingRun,
)
from annotate.models.feedback import current_annotation, study_label
from annotate.models.items import QueryKind
from annotate.models.studies import FeedbackKind


def shown_votes(study: Study):
    """Current a/b votes that an annotator gave on screen: imported votes had no left and right.

    Answers to gold queries are left out, as the bias flags leave them out (selectors.flags).
    """
    return PairwiseChoice.objects.filter(
        study_label(study, "annotation__"), annotation__assignment__isnull=False, shown_choice__in=["a", "b"]
    )


def current_annotations(study):
    """Current annotations of the study, answers to gold queries included: the dashboard's progress
    counts work done (its query count and labels wanted include gold queries too). Reads of the
    study's labels as data use models.feedback.study_label, which leaves gold out.

    `study` may be OuterRef("pk"), for a count per study in a subquery.
    """
    return Annotation.objects.filter(current_annotation(), query__study=study)


def row_count(queryset) -> Coalesce:
    """How many rows a (correlated) queryset has, as a scalar subquery: no GROUP BY, 0 when none."""
    counted = queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def studies_counts(studies: list[Study]) -> dict[int, dict]:
    """study_counts for each study, by id, in one statement however many studies there are."""
    rows = (
        Study.objects.filter(pk__in=[s.pk for s in studies])
        .annotate(
            n_prompts=row_count(Prompt.objects.filter(study=OuterRef("pk"))),
            n_queries=row_count(Query.objects.filter(study=OuterRef("pk"))),
            n_labels=row_count(current_annotations(OuterRef("pk"))),
        )
        .values_list("pk", "overlap", "n_prompts", "n_queries", "n_labels")
    )
    counts = {}
    for pk, overlap, prompts, queries, labels in rows:
        wanted = queries * overlap
        counts[pk] = {
            "prompts": prompts,
            "queries": queries,
            "labels": labels,
            "labels_wanted": wanted,
            "labels_fraction": min(labels / wanted, 1.0) if wanted else 0.0,
        }
    return counts


def study_counts(study: Study) -> dict:
    """Prompts, queries, labels stored and labels wanted (every query labelled `overlap` times)."""
    return studies_counts([study])[study.pk]


def annotator_stats(study: Study) -> list[dict]:
    """One row per annotator who labelled in the study: labels, and how often they picked the left response.

    `left_rate` is the share of their a/b pairwise choices where the response shown on the left
    won (ties and both-bad are left out); None when they made no a/b choice. Near 0.5 is unbiased.
    """
    per_annotator = current_annotations(study).values("annotator__username").annotate(n=Count("id")).order_by()
    labels = {row["annotator__username"]: row["n"] for row in per_annotator}
    sided = (
        shown_votes(study)
        .values("annotation__annotator__username")
        .annotate(sided=Count("id"), left=Count("id", filter=Q(shown_choice="a")))
        .order_by()
    )
    bias = {row["annotation__annotator__username"]: (row["left"], row["sided"]) for row in sided}
    rows = []
    for username in sorted(labels):
        left, total = bias.get(username, (0, 0))
        rows.append(
            {
                "username": username,
                "labels": labels[username],
                "sided": total,
                "left": left,
                "left_rate": (left / total) if total else None,
            }
        )
    return rows


def shows_pairs(study: Study) -> bool:
    """Whether anything in the study was or will be asked side by side, where position bias can show."""
    return study.queries.filter(kind=QueryKind.PAIRWISE).exists() or FeedbackKind.PAIRWISE in (
        study.feedback_kinds or [FeedbackKind.PAIRWISE]
    )


def position_bias(study: Study) -> dict:
    """Across all annotators: a/b choices, how many went to the left response, and the share."""
    row = shown_votes(study).aggregate(sided=Count("id"), left=Count("id", filter=Q(shown_choice="a")))
    sided, left = row["sided"], row["left"]
    return {"sided": sided, "left": left, "left_rate": (left / sided) if sided else None}


def study_members(study: Study):
    return Membership.objects.filter(study=study).select_related("user").order_by("role", "user__username")


def study_runs(study: Study, *, limit: int | None = None):
    runs = TrainingRun.objects.filter(study=study).select_related("created_by", "model_version").order_by("-created_at", "-id")
    return runs[:limit] if limit else runs


def model_version_table(study: Study) -> dict:
    """The study's model versions, newest first, with the union of their metric names for a side-by-side table.

    Returns {"versions": [...], "rows": [(metric, [value or None per version]), ...]}.
    """
    versions = list(ModelVersion.objects.filter(study=study).select_related("run").order_by("kind", "-version"))
    # Only scalar metrics fit a table cell; nested ones stay on the run page.
    names = sorted(
        {
            name
            for version in versions
            for name, value in (version.metrics or {}).items()
            if value is None or isinstance(value, (int, float, str, bool))
        }
    )
    rows = [(name, [(v.metrics or {}).get(name) for v in versions]) for name in names]
    return {"versions": versions, "rows": rows}


def study_dataset_exports(study: Study, *, limit: int | None = None):
    """The study's export snapshots, newest first."""
    exports = DatasetExport.objects.filter(study=study).select_related("created_by")
    return exports[:limit] if limit is not None else exports
