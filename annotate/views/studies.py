"""Study pages: the list of a user's studies, the manager's dashboard and its forms, the runs list."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate import access
from annotate.errors import InvalidInput, NotFound, PreflabError
from annotate.metric_words import metric_words
from annotate.models.studies import FeedbackKind, Role, StudyStatus
from annotate.selectors import studies as study_selectors
from annotate.selectors.agreement import study_agreement
from annotate.selectors.flags import study_flags
from annotate.selectors.gold import gold_accuracy
from annotate.selectors.plots import dashboard_plots
from annotate.selectors.queues import annotator_progress
from annotate.selectors.rounds import accuracy_plot, loop_state
from annotate.selectors.training_readiness import study_readiness
from annotate.services.gold import query_mark_gold
from annotate.services.importers import FORMAT_LABELS, study_file_import
from annotate.services.items import MAX_RANKING, MIN_RANKING
from annotate.services.rounds import round_pause, round_resume, round_start
from annotate.services.studies import membership_add, study_create
from annotate.services.study_status import STATUS_SUMMARY
from annotate.views.errors import is_htmx, page
from annotate.views.nav import with_perms
from annotate.views.runs import named_metric_text
from annotate.views.study_settings import study_asks_words

RECENT_RUNS = 5


@require_GET
@page
def study_list(request: HttpRequest) -> HttpResponse:
    """The user's studies; archived ones only with ?archived=1 (counted, in the same statement, for the link)."""
    everything = list(access.studies_for(request.user).order_by("name", "id"))
    show_archived = request.GET.get("archived") in {"1", "true"}
    archived = sum(study.status == StudyStatus.ARCHIVED for study in everything)
    studies = [with_perms(study) for study in everything if show_archived or study.status != StudyStatus.ARCHIVED]
    # Whoever watches a study (manager, researcher) sees its labels; an annotator their own queue.
    counts = study_selectors.studies_counts([study for study in studies if "export" in study.perms])
    for study in studies:
        if study.pk in counts:
            study.counts = counts[study.pk]
        elif "annotate" in study.perms:
            study.progress = annotator_progress(study=study, annotator=request.user)
    context = {
        "studies": studies,
        "may_create": access.may_create_studies(request.user),
        "archived": archived,
        "show_archived": show_archived,
    }
    return render(request, "annotate/study_list.html", context)


@require_http_methods(["GET", "POST"])
@page
def study_new(request: HttpRequest) -> HttpResponse:
    """Name a new study; its creator becomes its manager and goes on to its settings."""
    access.check_may_create_studies(request.user)
    name, error = "", ""
    if request.method == "POST":
        name = request.POST.get("name", "")
        try:
            study = study_create(creator=request.user, name=name)
        except InvalidInput as exc:
            error = exc.message
        else:
            messages.success(request, f"Study {study.name!r} created. Choose what it asks, then import prompts.")
            return redirect("study-settings", study_id=study.pk)
    return render(request, "annotate/study_new.html", {"name": name, "error": error}, status=400 if error else 200)


def import_makes(study) -> str:
    """What an imported prompt's responses become in this study, for the import form's help."""
    kinds = study.feedback_kinds or [FeedbackKind.PAIRWISE]
    if FeedbackKind.PAIRWISE in kinds:
        return "Each pair of responses to a prompt becomes a query."
    if FeedbackKind.RANKING in kinds:
        return f"All responses to a prompt ({MIN_RANKING} to {MAX_RANKING}) become one query, to be ranked."
    return "Each response becomes a query of its own."


@require_GET
@page
def study_dashboard(request: HttpRequest, study_id: int) -> HttpResponse:
    """Managers run the study from here; researchers see the same figures, without its forms."""
    study = with_perms(access.get_study(request.user, study_id, "dashboard"))
    context = {
        "study": study,
        "counts": study_selectors.study_counts(study),
        "annotators": study_selectors.annotator_stats(study),
        "bias": study_selectors.position_bias(study) if study_selectors.shows_pairs(study) else None,
        "members": study_selectors.study_members(study),
        "runs": study_selectors.study_runs(study, limit=RECENT_RUNS),
        "roles": Role.choices,
        "readiness": study_readiness(study),
        "import_makes": import_makes(study),
        "import_formats": FORMAT_LABELS.items(),
        "asks": study_asks_words(study),
        "status_summary": STATUS_SUMMARY.get(study.status),
        "agreement": study_agreement(study),
        "flags": study_flags(study),
        "gold": {"accuracy": gold_accuracy(study=study), "queries": study.queries.filter(is_gold=True).count()},
        "snapshots": study_selectors.study_dataset_exports(study, limit=RECENT_RUNS) if "export" in study.perms else [],
    }
    context["loop"] = loop_state(study)
    context["plot"] = accuracy_plot(context["loop"].rounds)
    context["plots"] = dashboard_plots(
        study=study,
        annotators=context["annotators"],
        agreement=context["agreement"],
        gold=context["gold"]["accuracy"],
        flags=context["flags"],
        rounds=context["loop"].rounds,
    )
    return render(request, "annotate/dashboard.html", context)


# The dashboard's round buttons: what each calls, and what it says once done.
ROUND_ACTIONS = {
    "start": (lambda study, user: round_start(study=study, by=user), "Round {number} is {status}."),
    "pause": (lambda study, user: round_pause(study=study), "Paused: the next round waits for Resume."),
    "resume": (lambda study, user: round_resume(study=study), "Resumed."),
}


@require_POST
@page
def study_rounds_act(request: HttpRequest, study_id: int, action: str) -> HttpResponse:
    """Start or force the next round, pause or resume the loop."""
    study = access.get_study(request.user, study_id, "manage")
    if action not in ROUND_ACTIONS:
        raise NotFound(f"No round action {action!r}.")
    act, done = ROUND_ACTIONS[action]
    try:
        result = act(study, request.user)
    except PreflabError as exc:
        messages.error(request, exc.message)
    else:
        status = result.get_status_display().lower() if action == "start" else ""
        messages.success(request, done.format(number=getattr(result, "number", ""), status=status))
    return redirect("study-dashboard", study_id=study.pk)


@require_POST
@page
def study_member_add(request: HttpRequest, study_id: int) -> HttpResponse:
    study = access.get_study(request.user, study_id, "manage")
    username = request.POST.get("username", "").strip()
    role = request.POST.get("role", "")
    try:
        membership = membership_add(study=study, username=username, role=role)
    except PreflabError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"{membership.user.get_username()} is now {membership.get_role_display().lower()} in this study."
        )
    return redirect("study-dashboard", study_id=study.pk)


@require_POST
@page
def study_gold_mark(request: HttpRequest, study_id: int) -> HttpResponse:
    """Mark a query of the study as gold with the answer given as JSON; an empty answer unmarks it."""
    study = access.get_study(request.user, study_id, "manage")
    try:
        query = study.queries.filter(pk=int(request.POST.get("query", ""))).first()
    except ValueError:
        query = None
    text = request.POST.get("answer", "").strip()
    try:
        if query is None:
            raise InvalidInput("Give the id of one of this study's queries.", field="query")
        try:
            answer = json.loads(text) if text else None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"The gold answer is not valid JSON ({exc.msg}).", field="answer") from exc
        query_mark_gold(query=query, answer=answer)
    except PreflabError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Query {query.pk} is {'now gold' if query.is_gold else 'no longer gold'}.")
    return redirect(reverse("study-dashboard", args=[study.pk]) + "#gold")


def count_phrase(name: str, value: int) -> str:
    """prompts_created, 1 -> "1 prompt created"; queries_created, 3 -> "3 queries created"."""
    noun, _, rest = name.partition("_")
    if value == 1:
        noun = "query" if noun == "queries" else noun.removesuffix("s")
    return f"{value} {noun} {rest.replace('_', ' ')}"


@require_POST
@page
def study_import(request: HttpRequest, study_id: int) -> HttpResponse:
    study = access.get_study(request.user, study_id, "manage")
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise InvalidInput("Choose a JSONL file to import.", field="file")
        result = study_file_import(study=study, format=request.POST.get("format", "jsonl"), file=upload)
    except PreflabError as exc:
        messages.error(request, exc.message)
    else:
        summary = ", ".join(count_phrase(name, value) for name, value in result.as_dict().items())
        messages.success(request, f"Imported {upload.name}: {summary}.")
    if is_htmx(request):  # the form showed the upload's progress; htmx now loads the dashboard with the result
        return HttpResponse(status=204, headers={"HX-Redirect": reverse("study-dashboard", args=[study.pk])})
    return redirect("study-dashboard", study_id=study.pk)


@require_POST
@page
def study_train(request: HttpRequest, study_id: int) -> HttpResponse:
    # Imported here: the training service pulls in the task module, which only this view needs.
    from annotate.services.training import training_run_start

    study = access.get_study(request.user, study_id, "train")
    try:
        run = training_run_start(study=study, requested_by=request.user, kind=request.POST.get("kind", "reward"), config={})
    except PreflabError as exc:
        messages.error(request, exc.message)
        return redirect("study-dashboard", study_id=study.pk)
    return redirect("run-detail", run_id=run.pk)


@require_GET
@page
def study_runs(request: HttpRequest, study_id: int) -> HttpResponse:
    study = with_perms(access.get_study(request.user, study_id, "history"))
    table = study_selectors.model_version_table(study)
    table["rows"] = [
        {"name": name, "words": metric_words(name), "cells": [named_metric_text(name, value) for value in values]}
        for name, values in table["rows"]
    ]
    context = {"study": study, "runs": study_selectors.study_runs(study), "table": table}
    return render(request, "annotate/study_runs.html", context)
