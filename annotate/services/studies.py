"""Creating studies and managing who belongs to them."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotate.errors import InvalidInput
from annotate.models import Membership, Study
from annotate.models.studies import FeedbackKind, Role, SelectionStrategy

STUDY_FIELDS = {
    "name",
    "description",
    "guidelines",
    "overlap",
    "round_size",
    "policy_model",
    "reward_model",
    "selection_strategy",
}


@transaction.atomic
def study_create(*, creator: AbstractBaseUser, name: str, **fields) -> Study:
    """Create a study; its creator becomes its manager."""
    unknown = set(fields) - STUDY_FIELDS
    if unknown:
        raise InvalidInput(f"Unknown study field(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0])
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A study needs a name.", field="name")
    overlap = fields.get("overlap", 1)
    if not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 1:
        raise InvalidInput(f"overlap must be a whole number of at least 1, not {overlap!r}.", field="overlap")
    strategy = fields.get("selection_strategy", SelectionStrategy.RANDOM)
    if strategy not in SelectionStrategy.values:
        raise InvalidInput(
            f"Unknown selection_strategy {strategy!r}; known: {', '.join(SelectionStrategy.values)}.", field="selection_strategy"
        )
    study = Study.objects.create(name=name, created_by=creator, feedback_kinds=[FeedbackKind.PAIRWISE], **fields)
    Membership.objects.create(user=creator, study=study, role=Role.MANAGER)
    return study


@transaction.atomic
def membership_add(*, study: Study, username: str, role: str) -> Membership:
    """Give a user a role in a study, or change the role they have."""
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.", field="role")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInput(f"No user named {username!r}.", field="username")
    membership, _ = Membership.objects.update_or_create(user=user, study=study, defaults={"role": role})
    return membership
