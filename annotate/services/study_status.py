"""A study's status: active, paused (no queries served) or archived (read-only); the managers' actions on it.

Everything the pages and the API say about a status is written here, once: what an annotator is
told (NOT_SERVED), what the dashboard and settings page say it means, and what a status button says
once done.

The round loop has a status of its own (`LoopStatus`): pausing the loop stops it choosing the next
round, while pausing the study stops annotators being served queries. Archiving a study also
pauses a running loop, so no round is chosen or trained while it is archived.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Case, Value, When

from annotate.errors import Conflict, InvalidInput, NotFound
from annotate.models import Study
from annotate.models.studies import LoopStatus, StudyStatus
from annotate.rows import fetch_one

# Per action: the statuses it may be taken from, and the status it leads to.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "pause": (frozenset({StudyStatus.ACTIVE}), StudyStatus.PAUSED),
    "resume": (frozenset({StudyStatus.PAUSED}), StudyStatus.ACTIVE),
    "archive": (frozenset({StudyStatus.ACTIVE, StudyStatus.PAUSED}), StudyStatus.ARCHIVED),
    "unarchive": (frozenset({StudyStatus.ARCHIVED}), StudyStatus.ACTIVE),
}


@dataclass(frozen=True)
class NotServed:
    """Why an annotator is served nothing though the pool may not be empty: the workspace's heading, and
    the sentence the workspace shows under it and the API answers as its 409's detail."""

    heading: str
    message: str


# What an annotator is told when the study's status, not an empty pool, is why nothing is served.
NOT_SERVED = {
    StudyStatus.PAUSED: NotServed(
        "This study is paused", "This study is paused by its manager: no queries are served until it is resumed."
    ),
    StudyStatus.ARCHIVED: NotServed(
        "This study is archived", "This study is archived: it is read-only, and no queries are served."
    ),
}
# What a status means, as its managers and researchers read it: in a line under the dashboard's title
# (an active study has none), and in full on the settings page beside the status buttons.
STATUS_SUMMARY = {
    StudyStatus.PAUSED: "Annotators are served no queries until the study is resumed.",
    StudyStatus.ARCHIVED: "Read-only: the dashboard and exports still work.",
}
STATUS_MEANS = {
    StudyStatus.ACTIVE: "Annotators are served queries. Pause to stop serving them for a while; "
    "archive a finished study to make it read-only.",
    StudyStatus.PAUSED: "Annotators are served no queries until the study is resumed; "
    "answers to queries they already hold are still taken.",
    StudyStatus.ARCHIVED: "Read-only: no queries are served and nothing can be answered, changed, imported or trained; "
    "hidden from the study list unless archived studies are shown. The dashboard and exports still work.",
}
# What each action's button says once done.
ACTION_DONE = {
    "pause": "Paused: annotators are served no queries until you resume the study.",
    "resume": "Resumed: annotators are served queries again.",
    "archive": "Archived: the study is read-only and hidden from the study list; its dashboard and exports still work.",
    "unarchive": "Unarchived: the study is active again.",
}


def status_words(statuses) -> str:
    """{"active", "paused"} -> "an active or paused"."""
    names = [str(s) for s in StudyStatus.values if s in statuses]
    words = " or ".join(names)
    return ("an " if words[0] in "aeiou" else "a ") + words


@transaction.atomic
def study_status_change(*, study: Study, action: str) -> Study:
    """Pause, resume, archive or unarchive the study; 409 naming its status when it cannot be done from there.

    The study row is locked FOR UPDATE first: the move waits for the changes that checked the study
    was not archived (`refuse_if_archived`) to commit, and a change checking while it is in flight
    waits for it. Then one conditional UPDATE, so of two managers acting at once the second is told
    where it stands now. Unarchiving makes a study active again; a round loop that archiving paused stays paused.
    """
    if action not in TRANSITIONS:
        raise InvalidInput(f"Unknown study action {action!r}; use one of {', '.join(TRANSITIONS)}.", field="action")
    sources, target = TRANSITIONS[action]
    list(Study.objects.select_for_update().filter(pk=study.pk).values_list("pk"))
    changes: dict = {"status": target}
    if target == StudyStatus.ARCHIVED:
        running = When(loop_status=LoopStatus.RUNNING, then=Value(LoopStatus.PAUSED))
        changes["loop_status"] = Case(running, default="loop_status")
    if not Study.objects.filter(pk=study.pk, status__in=sources).update(**changes):
        study.refresh_from_db()
        raise Conflict(f"The study is {study.status}; only {status_words(sources)} study can be {action}d.")
    study.refresh_from_db()
    return study


def study_lock() -> str:
    """The locking clause of a read of the study row that a change checks its status with (see refuse_if_archived)."""
    return " FOR KEY SHARE" if connection.vendor == "postgresql" else ""  # SQLite serialises writers anyway


def refuse_if_archived(study: Study, doing: str, *, locked: bool = False) -> None:
    """409 for a change to an archived study (read-only); `doing` says the change, as "answering queries".

    Call it inside the change's transaction. It reads the status afresh (the caller's object may
    have been loaded before an archive) under a KEY SHARE lock on the study row, held until that
    transaction ends: an archive (which locks the row FOR UPDATE) waits for the change to commit,
    and a change checking while an archive is in flight waits for it, then is refused. KEY SHARE
    is the lock a row referring to the study takes anyway: changes never wait for one another, nor
    for an import's NO KEY UPDATE lock. A caller that goes on to lock the study row itself locks it first.
    `locked`: the caller has just read `study` FOR UPDATE in this transaction, so its status is
    current and held under a stronger lock than this one: it is not read again.
    """
    if not locked:
        row = fetch_one(f"SELECT status FROM annotate_study WHERE id = %s{study_lock()}", [study.pk])
        if row is None:
            raise NotFound(f"No study {study.pk}.")
        study.status = row[0]
    if study.status == StudyStatus.ARCHIVED:
        raise Conflict(f"This study is archived: it is read-only, so {doing} is refused; a manager can unarchive it.")
