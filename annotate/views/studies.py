"""Study pages: the list of a user's studies, the manager's dashboard and its forms, the runs list."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotate import access
from annotate.errors import InvalidInput, PreflabError
from annotate.models.studies import Role
from annotate.models.training import RunKind
from annotate.selectors import studies as study_selectors
from annotate.selectors.queues import annotator_progress
from annotate.services.items import items_import
from annotate.services.studies import membership_add
from annotate.views.errors import is_htmx, page
from annotate.views.nav import with_perms
from annotate.views.runs import named_metric_text

RECENT_RUNS = 5


@require_GET
@page
def study_list(request: HttpRequest) -> HttpResponse:
    studies = [with_perms(study) for study in access.studies_for(request.user).order_by("name", "id")]
    # Whoever watches a study (manager, researcher) sees its labels; an annotator their own queue.
    counts = study_selectors.studies_counts([study for study in studies if "export" in study.perms])
    for study in studies:
        if study.pk in counts:
            study.counts = counts[study.pk]
        elif "annotate" in study.perms:
            study.progress = annotator_progress(study=study, annotator=request.user)
    return render(request, "annotate/study_list.html", {"studies": studies})


@require_GET
@page
def study_dashboard(request: HttpRequest, study_id: int) -> HttpResponse:
    study = with_perms(access.get_study(request.user, study_id, "manage"))
    context = {
        "study": study,
        "counts": study_selectors.study_counts(study),
        "annotators": study_selectors.annotator_stats(study),
        "bias": study_selectors.position_bias(study),
        "members": study_selectors.study_members(study),
        "runs": study_selectors.study_runs(study, limit=RECENT_RUNS),
        "roles": Role.choices,
        "run_kinds": RunKind.choices,
    }
    return render(request, "annotate/dashboard.html", context)


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
        result = items_import(study=study, lines=upload)
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
    table["rows"] = [(name, [named_metric_text(name, value) for value in values]) for name, values in table["rows"]]
    context = {"study": study, "runs": study_selectors.study_runs(study), "table": table}
    return render(request, "annotate/study_runs.html", context)
