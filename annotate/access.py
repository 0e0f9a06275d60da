"""Who may do what, in one place. Every view and API endpoint fetches through these helpers.

A user who is not a member of a study gets 404 for it, not 403, so a study's existence does not
leak; a member whose role does not allow the action gets 403.
"""

from __future__ import annotations

from typing import TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import OuterRef, Subquery

from annotate.errors import Forbidden, NotFound
from annotate.models import Annotation, DatasetExport, ModelVersion, Query, Study, TrainingRun
from annotate.models.items import QUERY_COLUMNS
from annotate.models.studies import STUDY_COLUMNS, Membership, Role
from annotate.rows import fetch_one

# The rows fetched through their study: a training run, a model version, a dataset export, a query, an answer.
InStudy = TypeVar("InStudy", TrainingRun, ModelVersion, DatasetExport, Query, Annotation)
# What each role may do in its study. One table, tested as a matrix.
PERMISSIONS: dict[str, frozenset[str]] = {
    Role.MANAGER: frozenset({"view", "annotate", "dashboard", "manage", "export", "train", "history", "review", "queue"}),
    Role.ANNOTATOR: frozenset({"view", "annotate"}),
    Role.RESEARCHER: frozenset({"view", "dashboard", "export", "history", "queue"}),
    Role.REVIEWER: frozenset({"view", "dashboard", "review"}),
}
ACTIONS = frozenset().union(*PERMISSIONS.values())
# How a refusal says each action: "does not allow you to ...".
ACTION_WORDS = {
    "view": "see it",
    "annotate": "annotate",
    "dashboard": "see its dashboard",
    "manage": "change it",
    "export": "export its labels",
    "train": "train models",
    "history": "see its training runs and models",
    "review": "review its answers",
    "queue": "see its queue",
}
# The largest primary key (a signed 64-bit integer in PostgreSQL and SQLite alike).
MAX_ID = 2**63 - 1


def as_id(value) -> int | None:
    """A primary key from a URL (digits, as text or a number), or None where no row can have it.

    The URLs take any run of digits; a number past MAX_ID would make the written-out statements
    fail instead of find nothing.
    """
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID else None


def role_in(user: AbstractBaseUser, study: Study) -> str | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, study=study).values_list("role", flat=True).first()


def can(user: AbstractBaseUser, study: Study, action: str) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {sorted(ACTIONS)}")
    role = role_in(user, study)
    return role is not None and action in PERMISSIONS[role]


def may_create_studies(user: AbstractBaseUser) -> bool:
    """Whether the user may create a study (and so become its manager): PREFLAB_STUDY_CREATORS says who."""
    if not user.is_authenticated:
        return False
    return settings.PREFLAB_STUDY_CREATORS == "all" or user.is_staff or user.is_superuser


def check_may_create_studies(user: AbstractBaseUser) -> None:
    if not may_create_studies(user):
        raise Forbidden("Only staff users may create studies here; ask an administrator to create one for you.")


def studies_for(user: AbstractBaseUser):
    """The studies a user belongs to, with their role annotated as `my_role`."""
    if not user.is_authenticated:
        return Study.objects.none()
    role = Membership.objects.filter(user=user, study=OuterRef("pk")).values("role")[:1]
    return Study.objects.filter(memberships__user=user).annotate(my_role=Subquery(role))


def get_study(user: AbstractBaseUser, study_id: int, action: str = "view") -> Study:
    """The study if the user may do `action` in it; 404 for non-members, 403 for a role without it."""
    row, key = None, as_id(study_id)
    if user.is_authenticated and key is not None:
        # Every request of the annotation loop starts here, so the statement is written out.
        row = fetch_one(
            f"SELECT m.role, {STUDY_COLUMNS.sql} FROM annotate_membership m JOIN annotate_study s ON s.id = m.study_id "
            "WHERE m.user_id = %s AND m.study_id = %s",
            [user.pk, key],
        )
    if row is None:
        raise NotFound(f"No study {study_id}.")
    role, study = row[0], STUDY_COLUMNS.load(row, 1)
    refuse_unless_allowed(role, action)
    study.my_role = role
    return study


def refuse_unless_allowed(role: str, action: str) -> None:
    """403 for a member whose role lacks the action (a non-member was told 404 before this)."""
    if action not in PERMISSIONS[role]:
        raise Forbidden(f"Your role in this study ({role}) does not allow you to {ACTION_WORDS[action]}.")


def get_query_for_annotator(user: AbstractBaseUser, query_id: int) -> Query:
    """A query the user holds or held an assignment for, with its study; anything else is 404 (no existence leak)."""
    key = as_id(query_id)
    if not user.is_authenticated or key is None:
        raise NotFound(f"No query {query_id}.")
    queries, studies = QUERY_COLUMNS, STUDY_COLUMNS
    row = fetch_one(
        f"SELECT m.role, EXISTS (SELECT 1 FROM annotate_assignment a WHERE a.query_id = q.id AND a.annotator_id = %s), "
        f"{queries.sql}, {studies.sql} FROM annotate_query q JOIN annotate_study s ON s.id = q.study_id "
        "LEFT JOIN annotate_membership m ON m.study_id = q.study_id AND m.user_id = %s WHERE q.id = %s",
        [user.pk, user.pk, key],
    )
    if row is None or not row[1] or row[0] is None or "annotate" not in PERMISSIONS[row[0]]:
        raise NotFound(f"No query {query_id}.")
    query = queries.load(row, 2)
    query.study = studies.load(row, 2 + queries.width)
    query.study.my_role = row[0]
    return query


def get_annotation_for_annotator(user: AbstractBaseUser, annotation_id: int) -> Annotation:
    """One of the user's own annotations, in a study where they may still annotate, with its query,
    assignment and study; anyone else's is 404 (no existence leak)."""
    key = as_id(annotation_id)
    annotation = None
    if user.is_authenticated and key is not None:
        annotation = Annotation.objects.select_related("query", "assignment").filter(pk=key, annotator=user).first()
    if annotation is None:
        raise NotFound(f"No annotation {annotation_id}.")
    annotation.query.study = get_study(user, annotation.query.study_id, "annotate")
    return annotation


def get_in_study(
    user: AbstractBaseUser, model: type[InStudy], object_id: int | str, action: str, noun: str, *, via: str = ""
) -> InStudy:
    """A row of `model` (which has a `study`, or one through its `via` relation) if the user may do `action` in its study.

    Someone else's row answers exactly as an unknown id does (`No <noun> <id>.`), so ids do not
    reveal what exists in studies the user is not in; a member whose role lacks the action gets 403.
    """
    key = as_id(object_id)
    found = None
    if user.is_authenticated and key is not None:
        found = model.objects.select_related(f"{via}__study" if via else "study").filter(pk=key).first()
    study = None if found is None else (getattr(found, via) if via else found).study
    role = role_in(user, study) if study is not None else None
    if role is None:
        raise NotFound(f"No {noun} {object_id}.")
    refuse_unless_allowed(role, action)
    study.my_role = role
    return found


def get_run(user: AbstractBaseUser, run_id: int, action: str = "history") -> TrainingRun:
    return get_in_study(user, TrainingRun, run_id, action, "training run")


def get_model_version(user: AbstractBaseUser, version_id: int, action: str = "history") -> ModelVersion:
    return get_in_study(user, ModelVersion, version_id, action, "model version")


def get_annotation_for_review(user: AbstractBaseUser, annotation_id: int) -> Annotation:
    """Any answer in a study where the user may review, with its query and study; a non-member gets 404."""
    return get_in_study(user, Annotation, annotation_id, "review", "annotation", via="query")


def get_query_for_review(user: AbstractBaseUser, query_id: int) -> Query:
    """Any query of a study where the user may review, with its study; a non-member gets 404."""
    return get_in_study(user, Query, query_id, "review", "query")


def get_dataset_export(user: AbstractBaseUser, export_id: int) -> DatasetExport:
    return get_in_study(user, DatasetExport, export_id, "export", "dataset export")
