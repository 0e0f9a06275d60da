"""Who may do what, in one place. Every view and API endpoint fetches through these helpers.

A user who is not a member of a study gets 404 for it, not 403, so a study's existence does not
leak; a member whose role does not allow the action gets 403.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, Subquery

from annotate.errors import Forbidden, NotFound
from annotate.models import Assignment, Query, Study, TrainingRun
from annotate.models.studies import Membership, Role

# What each role may do in its study. One table, tested as a matrix.
PERMISSIONS: dict[str, frozenset[str]] = {
    Role.MANAGER: frozenset({"view", "annotate", "manage", "export", "train", "history"}),
    Role.ANNOTATOR: frozenset({"view", "annotate"}),
    Role.RESEARCHER: frozenset({"view", "export", "history"}),
}
ACTIONS = frozenset().union(*PERMISSIONS.values())


def role_in(user: AbstractBaseUser, study: Study) -> str | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, study=study).values_list("role", flat=True).first()


def can(user: AbstractBaseUser, study: Study, action: str) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {sorted(ACTIONS)}")
    role = role_in(user, study)
    return role is not None and action in PERMISSIONS[role]


def studies_for(user: AbstractBaseUser):
    """The studies a user belongs to, with their role annotated as `my_role`."""
    if not user.is_authenticated:
        return Study.objects.none()
    role = Membership.objects.filter(user=user, study=OuterRef("pk")).values("role")[:1]
    return Study.objects.filter(memberships__user=user).annotate(my_role=Subquery(role))


def get_study(user: AbstractBaseUser, study_id: int, action: str = "view") -> Study:
    """The study if the user may do `action` in it; 404 for non-members, 403 for a role without it."""
    membership = (
        Membership.objects.select_related("study").filter(user=user, study_id=study_id).first() if user.is_authenticated else None
    )
    if membership is None:
        raise NotFound(f"No study {study_id}.")
    study, role = membership.study, membership.role
    if action not in PERMISSIONS[role]:
        raise Forbidden(f"Your role in this study ({role}) does not allow you to {action}.")
    study.my_role = role
    return study


def get_query_for_annotator(user: AbstractBaseUser, query_id: int) -> Query:
    """A query the user holds or held an assignment for; anything else is 404 (no existence leak)."""
    if not user.is_authenticated:
        raise NotFound(f"No query {query_id}.")
    role = Membership.objects.filter(user=user, study=OuterRef("study_id")).values("role")[:1]
    query = (
        Query.objects.select_related("study", "prompt")
        .annotate(my_role=Subquery(role), handed=Exists(Assignment.objects.filter(query=OuterRef("pk"), annotator=user)))
        .filter(pk=query_id)
        .first()
    )
    if query is None or not query.handed or query.my_role is None or "annotate" not in PERMISSIONS[query.my_role]:
        raise NotFound(f"No query {query_id}.")
    return query


def get_run(user: AbstractBaseUser, run_id: int, action: str = "history") -> TrainingRun:
    run = TrainingRun.objects.select_related("study").filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No training run {run_id}.")
    get_study(user, run.study_id, action)
    return run
