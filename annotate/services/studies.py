"""Creating and configuring studies, and managing who belongs to them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction

from annotate.errors import InvalidInput
from annotate.models import (
    Annotation,
    Assignment,
    CritiquePart,
    DatasetExport,
    Membership,
    ModelVersion,
    PairwiseChoice,
    Prompt,
    Query,
    QueryResponse,
    RankingPart,
    RatingPart,
    Response,
    Review,
    Round,
    SpanPart,
    Study,
    TrainingRun,
)
from annotate.models.feedback import study_data_query
from annotate.models.items import QueryKind
from annotate.models.studies import (
    MISSING_INFORMATION,
    PER_RESPONSE_KINDS,
    STRUCTURE_KINDS,
    FeedbackKind,
    Role,
    SelectionStrategy,
    default_rating_aspects,
    default_span_taxonomy,
)
from annotate.models.training import RunKind
from annotate.numbers import column_range, whole_number
from annotate.services.study_status import refuse_if_archived
from annotate.services.training import check_base_model, check_config, run_dir
from annotate.text import refuse_unstorable

# What a client may set on a study, in the order the API shows them (its serializer's writable fields).
STUDY_FIELDS = (
    "name",
    "description",
    "guidelines",
    "overlap",
    "round_size",
    "selection_strategy",
    "selection_params",
    "training_config",
    "policy_model",
    "reward_model",
    "feedback_kinds",
    "span_taxonomy",
    "rating_aspects",
    "gold_rate",
    "qualification_items",
    "qualification_pass",
    "annotator_quota",
)
TEXT_FIELDS = {"name", "description", "guidelines", "policy_model", "reward_model"}
# Labels wanted per query. Agreement studies ask a few dozen annotators at most; the claim lists
# every label count under the overlap in its SQL, so the bound also keeps that statement small.
MAX_OVERLAP = 100
# Queries selected per round: any number its column holds.
MAX_ROUND_SIZE = column_range(Study, "round_size")[1]
# Gold queries an annotator must answer before real ones: a qualification, not a second study.
MAX_QUALIFICATION_ITEMS = 1000
# Queries one annotator may answer: any number its column holds (0 or None: no limit).
MAX_ANNOTATOR_QUOTA = column_range(Study, "annotator_quota")[1]


class NumberField(NamedTuple):
    """A study number field's range. gold_rate and qualification_pass are shares (not whole)."""

    whole: bool
    low: int
    high: int
    no_limit: bool = False  # None (an empty form field) or 0 means no limit, stored as None


NUMBER_FIELDS = {
    "overlap": NumberField(True, 1, MAX_OVERLAP),
    "round_size": NumberField(True, 1, MAX_ROUND_SIZE),
    "gold_rate": NumberField(False, 0, 1),
    "qualification_pass": NumberField(False, 0, 1),
    "qualification_items": NumberField(True, 0, MAX_QUALIFICATION_ITEMS),
    "annotator_quota": NumberField(True, 0, MAX_ANNOTATOR_QUOTA, no_limit=True),
}
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


# What feedback_kinds may name: how responses are shown (one of QueryKind's values; "single" is
# what a list without pairwise or ranking means) and what is asked about each response.
KIND_WORDS = (*QueryKind.values, *PER_RESPONSE_KINDS)
SINGLE_WORDS = f"{QueryKind.SINGLE.label.lower()} ({QueryKind.SINGLE.value})"  # "one response at a time (single)"
SHOWN_WAYS = (
    f"{QueryKind.PAIRWISE.value}, {QueryKind.RANKING.value} or {QueryKind.SINGLE.value} ({QueryKind.SINGLE.label.lower()})"
)


def check_feedback_kinds(kinds) -> list[str]:
    """The kinds in canonical order, without "single" (a list with neither pairwise nor ranking means it)."""
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
        raise InvalidInput("feedback_kinds must be a non-empty list of kinds.", field="feedback_kinds")
    unknown = [k for k in kinds if k not in KIND_WORDS]
    if unknown:
        raise InvalidInput(f"Unknown feedback kind {unknown[0]!r}; known: {', '.join(KIND_WORDS)}.", field="feedback_kinds")
    if len(set(kinds)) != len(kinds):
        raise InvalidInput("feedback_kinds names a kind twice.", field="feedback_kinds")
    shown = [k for k in kinds if k in QueryKind.values]
    if len(shown) > 1:
        raise InvalidInput(
            f"A study shows its responses one way: {SHOWN_WAYS}; not {' and '.join(shown)} together.", field="feedback_kinds"
        )
    if not any(k in PER_RESPONSE_KINDS or k in STRUCTURE_KINDS for k in kinds):
        raise InvalidInput(
            f"Shown {SINGLE_WORDS}, a query must still ask for something: add spans, critique or ratings.",
            field="feedback_kinds",
        )
    return [k for k in FeedbackKind.values if k in kinds]  # one canonical order


def check_keyed_list(items, field: str, *, with_anchors: bool) -> list[dict]:
    """Span categories or rating aspects: a non-empty list of {key, label, ...} with unique slug keys."""
    if not isinstance(items, list) or not items:
        raise InvalidInput(f"{field} must be a non-empty list.", field=field)
    checked, seen = [], set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not KEY_PATTERN.match(item["key"]):
            raise InvalidInput(f"{field}[{i}].key must be a lowercase slug (letters, digits, - or _).", field=field)
        if item["key"] in seen or item["key"] == MISSING_INFORMATION:
            raise InvalidInput(f"{field}[{i}].key {item['key']!r} is repeated or reserved.", field=field)
        seen.add(item["key"])
        label = item.get("label") or item["key"]
        entry = {"key": item["key"], "label": str(label), "description": str(item.get("description", ""))}
        if with_anchors:
            anchors = item.get("anchors", {})
            if not isinstance(anchors, dict) or any(str(k) not in {"1", "2", "3", "4", "5"} for k in anchors):
                raise InvalidInput(f"{field}[{i}].anchors must map scale points 1-5 to text.", field=field)
            entry["anchors"] = {str(k): str(v) for k, v in anchors.items()}
        checked.append(entry)
    return checked


def check_selection(strategy, params) -> None:
    """An unknown strategy, or a parameter it does not take or cannot use, is refused naming it."""
    from learning.config import ConfigError
    from learning.select import strategy_params

    if not isinstance(strategy, str):
        raise InvalidInput("selection_strategy must be text.", field="selection_strategy")
    try:
        strategy_params(strategy, params)
    except ConfigError as exc:
        raise InvalidInput(str(exc), field=exc.field or "selection_params") from None


def check_training_config(config) -> dict:
    """The reward run's config each round trains with, checked as a run's is, errors naming training_config."""
    try:
        config = check_config(RunKind.REWARD, config)
        if "base_model" in config:
            check_base_model(config["base_model"])
    except InvalidInput as exc:
        field = "training_config" + (exc.field or "config").removeprefix("config")
        raise InvalidInput(exc.message.replace("config", "training_config", 1), field=field) from None
    return config


def check_number(name: str, value) -> int | float:
    """A number field's value (NUMBER_FIELDS) if it is in range, a share as a float; otherwise InvalidInput naming it.

    Every client gets these words, whatever it sent: a settings form refuses text that is no
    number by passing the text here.
    """
    whole, low, high, _ = NUMBER_FIELDS[name]
    if whole:
        return whole_number(value, name, low=low, high=high)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a number from {low} to {high}, not {value!r}.", field=name)
    return float(value)


def check_study_fields(fields: dict, study: Study | None = None) -> dict:
    """The fields checked and normalised; `study` is the one they change (None for a new study)."""
    unknown = set(fields) - set(STUDY_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown study field(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0])
    for name, value in fields.items():
        refuse_unstorable(value, name)
    for name in sorted(TEXT_FIELDS & set(fields)):
        if not isinstance(fields[name], str):
            raise InvalidInput(f"{name} must be text.", field=name)
        limit = Study._meta.get_field(name).max_length  # None for a text column: PREFLAB_MAX_TEXT_CHARS holds
        if limit is not None and len(fields[name]) > limit:
            raise InvalidInput(f"{name} is longer than {limit} characters ({len(fields[name])}).", field=name)
    fields = dict(fields)
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()
        if not fields["name"]:
            raise InvalidInput("A study needs a name.", field="name")
    for name, field in NUMBER_FIELDS.items():
        if name not in fields or (field.no_limit and fields[name] is None):
            continue
        fields[name] = check_number(name, fields[name])
        if field.no_limit:
            fields[name] = fields[name] or None  # 0 and None alike: no limit
    if "selection_strategy" in fields or "selection_params" in fields:
        # A new strategy is checked with the parameters it will run with: those given, or none.
        changed = (
            "selection_strategy" in fields and study is not None and fields["selection_strategy"] != study.selection_strategy
        )
        kept = {} if study is None or changed else study.selection_params
        fields.setdefault("selection_params", kept)
        check_selection(
            fields.get("selection_strategy", study.selection_strategy if study else SelectionStrategy.RANDOM),
            fields["selection_params"],
        )
    if study is not None and ("annotator_quota" in fields or "overlap" in fields):
        check_quota_covers_overlap(
            study, quota=fields.get("annotator_quota", study.annotator_quota), overlap=fields.get("overlap", study.overlap)
        )
    if "training_config" in fields:
        fields["training_config"] = check_training_config(fields["training_config"])
    if "reward_model" in fields:  # refused now, not when a run starts from it
        check_base_model(fields["reward_model"], field="reward_model")
    if "feedback_kinds" in fields:
        fields["feedback_kinds"] = check_feedback_kinds(fields["feedback_kinds"])
    if "span_taxonomy" in fields:
        fields["span_taxonomy"] = check_keyed_list(fields["span_taxonomy"], "span_taxonomy", with_anchors=False)
    if "rating_aspects" in fields:
        fields["rating_aspects"] = check_keyed_list(fields["rating_aspects"], "rating_aspects", with_anchors=True)
    return fields


def check_quota_covers_overlap(study: Study, *, quota: int | None, overlap: int) -> None:
    """A quota too small for the study's annotators to give every query its overlap is refused, naming annotator_quota.

    Counted when the quota or the overlap is set: the members with the annotator role, and the
    study's queries (gold ones left out: they are not labelled to an overlap). Annotators or
    queries added later are not checked again.
    """
    if not quota:
        return
    annotators = Membership.objects.filter(study=study, role=Role.ANNOTATOR).count()
    queries = Query.objects.filter(study_data_query(study)).count()
    if annotators * quota >= queries * overlap:
        return
    wanted, given = queries * overlap, annotators * quota
    fix = f"raise it to at least {-(-wanted // annotators)}" if annotators else "add annotators to the study first"
    raise InvalidInput(
        f"annotator_quota {quota} is below what overlap needs: {annotators} annotator{'s' if annotators != 1 else ''} "
        f"× {quota} = {given} answer{'s' if given != 1 else ''}, "
        f"but {queries} quer{'ies' if queries != 1 else 'y'} × overlap {overlap} "
        f"= {wanted} label{'s are' if wanted != 1 else ' is'} wanted; {fix}, or leave it empty for no limit.",
        field="annotator_quota",
    )


@transaction.atomic
def study_create(*, creator: AbstractBaseUser, name: str, **fields) -> Study:
    """Create a study; its creator becomes its manager. Pairwise, FG-RLHF spans and UltraFeedback aspects by default."""
    fields = check_study_fields({"name": name, **fields})
    fields.setdefault("feedback_kinds", [FeedbackKind.PAIRWISE.value])
    fields.setdefault("span_taxonomy", default_span_taxonomy())
    fields.setdefault("rating_aspects", default_rating_aspects())
    study = Study.objects.create(created_by=creator, **fields)
    Membership.objects.create(user=creator, study=study, role=Role.MANAGER)
    return study


@transaction.atomic
def study_update(*, study: Study, **fields) -> Study:
    """Change a study's configuration. Queries already created keep what they ask for; a new selection
    strategy applies from the next round, and queries already chosen keep their round and strategy."""
    refuse_if_archived(study, "changing its settings")
    fields = check_study_fields(fields, study)
    for name, value in fields.items():
        setattr(study, name, value)
    if fields:  # only what was changed: `study` may be stale in the columns the round loop moves
        study.save(update_fields=list(fields))
    return study


@transaction.atomic
def membership_add(*, study: Study, username: str, role: str) -> Membership:
    """Give a user a role in a study, or change the role they have."""
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.", field="role")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInput(f"No user named {username!r}.", field="username")
    if role != Role.MANAGER:
        # Locked, so that two managers demoting each other at once cannot leave the study with none.
        managers = set(
            Membership.objects.select_for_update().filter(study=study, role=Role.MANAGER).values_list("user_id", flat=True)
        )
        if managers == {user.pk}:
            raise InvalidInput(
                f"{username} is this study's only manager; make someone else a manager first, "
                "or nobody could change the study any more.",
                field="role",
            )
    membership, _ = Membership.objects.update_or_create(user=user, study=study, defaults={"role": role})
    return membership


# --- deleting ---------------------------------------------------------------------------------


def study_folders(study: Study) -> list[Path]:
    """The study's own folders under ARTIFACTS_DIR: export snapshots, feature caches, and each run's
    folder (its log and, once registered, its model version's artifact)."""
    from annotate.services.dataset_exports import exports_dir
    from annotate.services.features import features_dir

    runs = TrainingRun.objects.filter(study=study).only("pk")
    return [exports_dir(study), features_dir(study), *(run_dir(run) for run in runs)]


def study_delete_statements() -> list[tuple[str, int]]:
    """The statements that delete one study's rows, children before parents, each with how many
    times it takes the study's id. Set-based, so a study of any size costs a fixed number of
    statements and none of them lists ids (Django's collector sends `IN (...)` lists that pass
    PostgreSQL's 65,535 parameters for a study of tens of thousands of rows).
    """
    table = {model: connection.ops.quote_name(model._meta.db_table) for model in STUDY_MODELS}
    queries = f"SELECT id FROM {table[Query]} WHERE study_id = %s"
    annotations = f"SELECT id FROM {table[Annotation]} WHERE query_id IN ({queries})"
    prompts = f"SELECT id FROM {table[Prompt]} WHERE study_id = %s"
    versions = f"SELECT id FROM {table[ModelVersion]} WHERE study_id = %s"
    return [
        *((f"DELETE FROM {table[part]} WHERE annotation_id IN ({annotations})", 1) for part in ANNOTATION_PARTS),
        # A rejected annotation points at its review, and the review at the annotation: break the cycle.
        (f"UPDATE {table[Annotation]} SET rejected_by_id = NULL WHERE rejected_by_id IS NOT NULL AND query_id IN ({queries})", 1),
        (f"DELETE FROM {table[Review]} WHERE annotation_id IN ({annotations})", 1),
        # Corrections point at what they supersede, within the one statement's rows.
        (f"DELETE FROM {table[Annotation]} WHERE query_id IN ({queries})", 1),
        (f"DELETE FROM {table[Assignment]} WHERE query_id IN ({queries})", 1),
        (f"DELETE FROM {table[QueryResponse]} WHERE query_id IN ({queries})", 1),
        (f"DELETE FROM {table[Query]} WHERE study_id = %s", 1),
        (f"DELETE FROM {table[Response]} WHERE prompt_id IN ({prompts})", 1),
        (f"DELETE FROM {table[Prompt]} WHERE study_id = %s", 1),
        (f"DELETE FROM {table[Round]} WHERE study_id = %s", 1),
        # Versions of other studies never descend from this one's; should one, it loses its parent (SET_NULL).
        (f"UPDATE {table[ModelVersion]} SET parent_id = NULL WHERE parent_id IN ({versions}) AND study_id <> %s", 2),
        (f"DELETE FROM {table[ModelVersion]} WHERE study_id = %s", 1),
        (f"DELETE FROM {table[TrainingRun]} WHERE study_id = %s", 1),
        (f"DELETE FROM {table[DatasetExport]} WHERE study_id = %s", 1),
        (f"DELETE FROM {table[Membership]} WHERE study_id = %s", 1),
        (f"DELETE FROM {table[Study]} WHERE id = %s", 1),
    ]


ANNOTATION_PARTS = (PairwiseChoice, RankingPart, SpanPart, CritiquePart, RatingPart)
# Every model whose rows belong to a study, children first, with the lookup from it to its study.
# Tests check that no relation to these models comes from a model left out.
STUDY_PATHS = {
    **{part: "annotation__query__study" for part in ANNOTATION_PARTS},
    Review: "annotation__query__study",
    Annotation: "query__study",
    Assignment: "query__study",
    QueryResponse: "query__study",
    Query: "study",
    Response: "prompt__study",
    Prompt: "study",
    Round: "study",
    ModelVersion: "study",
    TrainingRun: "study",
    DatasetExport: "study",
    Membership: "study",
    Study: "pk",
}
STUDY_MODELS = tuple(STUDY_PATHS)


def study_row_counts(study_id: int) -> dict[type, int]:
    """How many rows of each model belong to the study: what deleting it removes."""
    return {model: model.objects.filter(**{STUDY_PATHS[model]: study_id}).count() for model in STUDY_MODELS}


@transaction.atomic
def study_delete(*, study: Study) -> None:
    """Delete a study, everything under it, and, once that commits, its files on disk.

    Users stay (annotations PROTECT their annotators; this deletes the annotations, never a user).
    Files go only after the commit, so a rolled-back delete leaves every file in place; only the
    study's own folders are removed, never another study's.
    """
    study_id = study.pk
    list(Study.objects.select_for_update().filter(pk=study_id).values_list("pk"))  # locked before its runs are listed
    folders = study_folders(study)
    with connection.cursor() as cursor:
        for sql, uses in study_delete_statements():
            cursor.execute(sql, [study_id] * uses)
    transaction.on_commit(lambda: remove_folders(folders))


def remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
