"""The study's queue page: its queries by state (open, held, done, waiting, gold), counted and listed.

Read-only, for managers and researchers (access: "queue"); the states are computed in
annotate/selectors/study_queue.py.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from annotate import access
from annotate.selectors.study_queue import STATES, queue_counts, queue_page
from annotate.views.errors import page
from annotate.views.nav import with_perms


@require_GET
@page
def study_queue(request: HttpRequest, study_id: int) -> HttpResponse:
    study = with_perms(access.get_study(request.user, study_id, "queue"))
    state = request.GET.get("state", "")
    now = timezone.now()
    rows = queue_page(study, state=state, page=request.GET.get("page", 1), now=now)
    counts = queue_counts(study, now=now)
    # Outside the round loop every query under the overlap is served: no query waits for a round.
    states = [
        (value, label, meaning, counts.states[value])
        for value, label, meaning in STATES
        if value != "waiting" or counts.current_round is not None
    ]
    context = {
        "study": study,
        "counts": counts,
        "states": states,
        "state": state,
        "state_label": next((label for value, label, _, _ in states if value == state), ""),
        "rows": rows,
    }
    return render(request, "annotate/study_queue.html", context)
