"""The manager's study settings: what each query asks, the span taxonomy, the rating aspects, the guidelines,
the quota per annotator; and the buttons that pause, resume, archive or unarchive the study.

The taxonomy and aspects are edited as text, one entry a line, fields separated by `|`:

    span categories:  key | Label | Description
    rating aspects:   key | Label | 1=anchor; 3=anchor; 5=anchor | Description

Blank lines and lines starting with `#` are ignored. Label, anchors and description may be left
out. `study_update` checks the result and its errors are shown beside the field they name.
"""

from __future__ import annotations

import re
from collections import Counter

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotate import access
from annotate.errors import InvalidInput, NotFound, PreflabError
from annotate.models import Query, Study
from annotate.models.items import QueryKind
from annotate.models.studies import PER_RESPONSE_KINDS, STRUCTURE_KINDS, FeedbackKind, SelectionStrategy
from annotate.services.studies import NUMBER_FIELDS, check_number, study_update
from annotate.services.study_status import ACTION_DONE, STATUS_MEANS, TRANSITIONS, study_status_change
from annotate.text import refuse_unstorable
from annotate.views.errors import page
from annotate.views.nav import with_perms

# (value, label, help): the values and labels are the API's (feedback_kinds, a query's kind).
STRUCTURES = [
    (kind.value, kind.label, help)
    for kind, help in (
        (QueryKind.PAIRWISE, "Two responses side by side; the annotator picks the better one (or a tie)."),
        (QueryKind.RANKING, "All of a prompt's responses (3 to 8) at once, ordered best to worst; ties allowed."),
        (QueryKind.SINGLE, "No comparison: each response is its own query, for spans, critiques or ratings."),
    )
]
EXTRAS = [
    (kind.value, kind.label, help)
    for kind, help in (
        (FeedbackKind.SPANS, "Highlight passages of a response and label them with a category from the taxonomy."),
        (FeedbackKind.CRITIQUE, "Say what is wrong with a response, and optionally rewrite it."),
        (FeedbackKind.RATINGS, "Score every response shown on each aspect, 1 to 5."),
    )
]
# The form's fields; the number fields (overlap, round size, gold settings, quota) are the service's NUMBER_FIELDS.
FIELDS = ("name", "guidelines", "feedback_kinds", "span_taxonomy", "rating_aspects", "selection_strategy", *NUMBER_FIELDS)


def taxonomy_text(taxonomy: list[dict]) -> str:
    return "\n".join(
        " | ".join(part for part in (c["key"], c.get("label", ""), c.get("description", "")) if part) for c in taxonomy
    )


def anchors_text(anchors: dict) -> str:
    return "; ".join(f"{point}={text}" for point, text in sorted(anchors.items()))


def aspects_text(aspects: list[dict]) -> str:
    lines = []
    for aspect in aspects:
        parts = [aspect["key"], aspect.get("label", ""), anchors_text(aspect.get("anchors") or {}), aspect.get("description", "")]
        while parts and not parts[-1]:
            parts.pop()
        lines.append(" | ".join(parts))
    return "\n".join(lines)


def entry_lines(text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, [part.strip() for part in line.split("|")]


def entry_line_numbers(text: str) -> list[int]:
    """The line each entry of a taxonomy or aspect list came from, so errors can name lines."""
    return [number for number, _ in entry_lines(text)]


# The service names fields as the API spells them; the form shows them under these names.
FIELD_TITLES = {
    "name": "Name",
    "overlap": "Overlap",
    "round_size": "Queries per round",
    "gold_rate": "Gold rate",
    "qualification_items": "Qualification items",
    "qualification_pass": "Pass mark",
    "annotator_quota": "Quota per annotator",
    "span_taxonomy": "Span categories",
    "rating_aspects": "Rating aspects",
}


def with_line_numbers(message: str, field: str, text: str) -> str:
    """`span_taxonomy[2].key ...` from the service becomes `Span categories, line 4: key ...`."""
    lines = entry_line_numbers(text)
    title = FIELD_TITLES[field]

    def replace(match: re.Match) -> str:
        index = int(match.group(1))
        return f"{title}, line {lines[index]}: the " if index < len(lines) else match.group(0)

    return re.sub(rf"^{field}\[(\d+)\]\.", replace, message)


def in_form_words(message: str) -> str:
    """`span_taxonomy must be ...` from the service becomes `Span categories must be ...`."""
    for field, title in FIELD_TITLES.items():
        if message.startswith(field + " "):
            return title + message[len(field) :]
    return message


def parse_taxonomy(text: str) -> list[dict]:
    entries = []
    for number, parts in entry_lines(text):
        if len(parts) > 3:
            raise InvalidInput(
                f"Span categories, line {number}: expected key | Label | Description, found {len(parts)} parts.",
                field="span_taxonomy",
            )
        key, label, description = (parts + ["", ""])[:3]
        entries.append({"key": key, "label": label or key, "description": description})
    return entries


def parse_anchors(text: str, number: int) -> dict[str, str]:
    anchors = {}
    for piece in filter(None, (p.strip() for p in text.split(";"))):
        point, sep, anchor = piece.partition("=")
        if not sep or point.strip() not in {"1", "2", "3", "4", "5"} or not anchor.strip():
            raise InvalidInput(
                f"Rating aspects, line {number}: anchors look like 1=Poor; 3=Fair; 5=Excellent, not {piece!r}.",
                field="rating_aspects",
            )
        anchors[point.strip()] = anchor.strip()
    return anchors


def parse_aspects(text: str) -> list[dict]:
    entries = []
    for number, parts in entry_lines(text):
        if len(parts) > 4:
            raise InvalidInput(
                f"Rating aspects, line {number}: expected key | Label | anchors | Description, found {len(parts)} parts.",
                field="rating_aspects",
            )
        key, label, anchors, description = (parts + ["", "", ""])[:4]
        entries.append({"key": key, "label": label or key, "anchors": parse_anchors(anchors, number), "description": description})
    return entries


def kinds_from_post(post: QueryDict) -> list[str]:
    """The form's choices as the API's feedback_kinds; study_update checks them, in the API's words."""
    structure = post.get("structure", "")
    return ([structure] if structure else []) + [k for k in post.getlist("kinds") if k]


def form_from_study(study: Study) -> dict:
    kinds = study.feedback_kinds or [FeedbackKind.PAIRWISE]
    structure = next((k for k in kinds if k in STRUCTURE_KINDS), QueryKind.SINGLE)
    return {
        "name": study.name,
        "guidelines": study.guidelines,
        "structure": structure,
        "kinds": [k for k in kinds if k in PER_RESPONSE_KINDS],
        "span_taxonomy": taxonomy_text(study.span_taxonomy),
        "rating_aspects": aspects_text(study.rating_aspects),
        "selection_strategy": study.selection_strategy,
        # As text; no quota (None: no limit) as an empty field.
        **{name: "" if getattr(study, name) is None else str(getattr(study, name)) for name in NUMBER_FIELDS},
    }


def form_from_post(post: QueryDict) -> dict:
    return {
        "name": post.get("name", ""),
        "guidelines": post.get("guidelines", ""),
        "structure": post.get("structure", ""),
        "kinds": post.getlist("kinds"),
        "span_taxonomy": post.get("span_taxonomy", ""),
        "rating_aspects": post.get("rating_aspects", ""),
        "selection_strategy": post.get("selection_strategy", ""),
        **{name: post.get(name, "") for name in NUMBER_FIELDS},
    }


def number_from_post(post: QueryDict, name: str) -> int | float | None:
    """A number field of the form as study_update takes it (None: the quota left empty, no limit).

    Text that is no number goes to the service's `check_number` as it is, so it is refused in the
    words (and with the range) that a number out of range gets.
    """
    text = post.get(name, "").strip()
    field = NUMBER_FIELDS[name]
    if field.no_limit and not text:
        return None
    try:
        return int(text) if field.whole else float(text)
    except ValueError:
        return check_number(name, text)  # raises: text is not a number


def fields_from_post(post: QueryDict) -> tuple[dict, dict[str, str]]:
    """The study_update fields, and the errors found while reading the text fields (by field name)."""
    fields: dict = {"name": post.get("name", ""), "guidelines": post.get("guidelines", "")}
    errors: dict[str, str] = {}
    for name in NUMBER_FIELDS:
        if name == "overlap" or name in post:  # a form from before a field existed leaves it as it is
            try:
                fields[name] = number_from_post(post, name)
            except InvalidInput as exc:
                errors[name] = in_form_words(exc.message)
    if "selection_strategy" in post:
        fields["selection_strategy"] = post["selection_strategy"]
    fields["feedback_kinds"] = kinds_from_post(post)
    for name, parse in (("span_taxonomy", parse_taxonomy), ("rating_aspects", parse_aspects)):
        try:
            fields[name] = parse(post.get(name, ""))
        except InvalidInput as exc:
            errors[name] = exc.message
    return fields, errors


def field_of(exc: InvalidInput) -> str:
    """Which form field an error from study_update belongs beside."""
    name = (exc.field or "").split("[", 1)[0]
    return name if name in FIELDS else "form"


def asks_words(kinds) -> str:
    """Feedback kinds in the settings page's words: ("pairwise", "spans") -> "Pairwise preference + Error spans"."""
    labels = dict(FeedbackKind.choices)
    return " + ".join(labels.get(k, k) for k in kinds)


def study_asks_words(study: Study) -> str:
    """What the study's new queries ask, as the settings page says it, shown responses included."""
    kinds = study.feedback_kinds or [FeedbackKind.PAIRWISE]
    if any(k in STRUCTURE_KINDS for k in kinds):
        return asks_words(kinds)
    return f"{QueryKind.SINGLE.label}: {asks_words(kinds)}"


def queries_by_asks(study: Study) -> list[dict]:
    """How many of the study's queries ask for what: they keep it whatever the settings say now."""
    counts = Counter(tuple(asks or [kind]) for kind, asks in Query.objects.filter(study=study).values_list("kind", "asks"))
    return [{"asks": asks_words(asks), "count": count} for asks, count in sorted(counts.items(), key=lambda item: -item[1])]


@require_http_methods(["GET", "POST"])
@page
def study_settings(request: HttpRequest, study_id: int) -> HttpResponse:
    study = with_perms(access.get_study(request.user, study_id, "manage"))
    errors: dict[str, str] = {}
    if request.method == "POST":
        fields, errors = fields_from_post(request.POST)
        if not errors:
            try:
                study_update(study=study, **fields)
            except PreflabError as exc:
                field = field_of(exc) if isinstance(exc, InvalidInput) else "form"
                message = exc.message
                if field in ("span_taxonomy", "rating_aspects"):
                    message = with_line_numbers(message, field, request.POST.get(field, ""))
                errors[field] = in_form_words(message)
            else:
                messages.success(request, "Settings saved. New queries will ask for what they say now.")
                return redirect("study-settings", study_id=study.pk)
        form = form_from_post(request.POST)
    else:
        form = form_from_study(study)
    context = {
        "study": study,
        "form": form,
        "errors": errors,
        "structures": STRUCTURES,
        "extras": EXTRAS,
        "existing": queries_by_asks(study),
        "strategies": SelectionStrategy.choices,
        "status_actions": [action for action, (sources, _) in TRANSITIONS.items() if study.status in sources],
        "status_means": STATUS_MEANS[study.status],
    }
    return render(request, "annotate/study_settings.html", context, status=400 if errors else 200)


@require_POST
@page
def study_guidelines_preview(request: HttpRequest, study_id: int) -> HttpResponse:
    """The guidelines as annotators will see them, for the settings page's live preview (htmx).

    A POST (CSRF-checked) of the form's `guidelines`: the text is what the manager is typing, too
    long for a URL. Rendered by the same sanitising `markdown` filter as the workspace, so the
    preview is exactly what will be shown. Text the study could not store (past
    PREFLAB_MAX_TEXT_CHARS, or holding NUL) gets the service's message instead, as a 400.
    """
    access.get_study(request.user, study_id, "manage")
    guidelines = request.POST.get("guidelines", "")
    status, error = 200, ""
    try:
        refuse_unstorable(guidelines, "guidelines")
    except InvalidInput as exc:
        status, error, guidelines = 400, exc.message, ""
    context = {"guidelines": guidelines, "preview_error": error}
    return render(request, "annotate/study_settings.html#guidelines-preview", context, status=status)


@require_POST
@page
def study_status_act(request: HttpRequest, study_id: int, action: str) -> HttpResponse:
    """Pause, resume, archive or unarchive the study, from the buttons on the settings page."""
    study = access.get_study(request.user, study_id, "manage")
    if action not in TRANSITIONS:
        raise NotFound(f"No study action {action!r}.")
    try:
        study_status_change(study=study, action=action)
    except PreflabError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, ACTION_DONE[action])
    return redirect("study-settings", study_id=study.pk)
