"""The JSON API. Each view checks access, calls one service or selector, and shapes the reply."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from functools import partial

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from annotate import access
from annotate.api import serializers as s
from annotate.errors import Conflict, InvalidInput
from annotate.models.studies import MISSING_INFORMATION, StudyStatus
from annotate.numbers import is_int
from annotate.selectors import agreement, flags
from annotate.selectors import gold as gold_selectors
from annotate.selectors import studies as study_selectors
from annotate.selectors.labels import answer_of
from annotate.selectors.queues import recent_answers
from annotate.services import assignments, exports, feedback, gold, importers, rounds, studies, study_status, training
from annotate.services.gold import NotQualified


@extend_schema(
    methods=["GET"],
    parameters=[OpenApiParameter("archived", str, enum=["1", "true"], description="Also list archived studies.")],
    responses=s.StudySerializer(many=True),
)
@extend_schema(methods=["POST"], request=s.StudySerializer, responses={201: s.StudySerializer})
@api_view(["GET", "POST"])
@parser_classes([JSONParser])  # a form would send overlap as the text "2", which is refused
def study_list(request):
    """The caller's studies (archived ones only with ?archived=1); a POST creates one."""
    if request.method == "GET":
        found = access.studies_for(request.user)
        if request.query_params.get("archived") not in {"1", "true"}:
            found = found.exclude(status=StudyStatus.ARCHIVED)
        return Response(s.StudySerializer(found, many=True).data)
    access.check_may_create_studies(request.user)
    body = s.StudySerializer(data=request.data)
    body.is_valid(raise_exception=True)
    study = studies.study_create(creator=request.user, **body.validated_data)
    study.my_role = "manager"
    return Response(s.StudySerializer(study).data, status=status.HTTP_201_CREATED)


@extend_schema(request=s.StudySerializer, responses=s.StudySerializer)
@api_view(["GET", "PATCH"])
@parser_classes([JSONParser])
def study_detail(request, pk: int):
    """Read a study; a manager may change its configuration (queries already made keep theirs)."""
    if request.method == "GET":
        return Response(s.StudySerializer(access.get_study(request.user, pk)).data)
    study = access.get_study(request.user, pk, "manage")
    body = s.StudySerializer(study, data=request.data, partial=True)
    body.is_valid(raise_exception=True)
    study = studies.study_update(study=study, **body.validated_data)
    study.my_role = "manager"
    return Response(s.StudySerializer(study).data)


@extend_schema(request=s.MemberSerializer, responses={201: s.MemberSerializer})
@api_view(["POST"])
def study_members(request, pk: int):
    study = access.get_study(request.user, pk, "manage")
    body = s.MemberSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    membership = studies.membership_add(study=study, **body.validated_data)
    return Response({"username": membership.user.username, "role": membership.role}, status=status.HTTP_201_CREATED)


JSONL_TYPES = {"application/x-ndjson", "application/jsonl", "application/json-lines", "text/plain"}
JSON_TYPES = {"application/json", "text/plain"}
PARQUET_TYPES = {"application/vnd.apache.parquet", "application/octet-stream"}
# Per format: the Content-Types taken as the body itself, and the one suggested.
IMPORT_TYPES = {
    "jsonl": (JSONL_TYPES, "application/x-ndjson"),
    "fgrlhf": (JSON_TYPES, "application/json"),
    "trl": (JSONL_TYPES | PARQUET_TYPES, "application/x-ndjson"),
    "labelstudio": (JSON_TYPES, "application/json"),
    "argilla": (JSON_TYPES | JSONL_TYPES, "application/json"),
}


IMPORT_RESULT = PolymorphicProxySerializer(
    component_name="StudyImportResult",
    serializers=[
        s.ImportResultSerializer,
        inline_serializer(
            "LabelledImportResult",
            {
                "records": serializers.IntegerField(),
                "prompts_created": serializers.IntegerField(),
                "prompts_unchanged": serializers.IntegerField(),
                "responses_created": serializers.IntegerField(),
                "queries_created": serializers.IntegerField(),
                "annotations_created": serializers.IntegerField(),
                "study_configured": serializers.BooleanField(),
            },
        ),
    ],
    resource_type_field_name=None,
)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "format",
            str,
            enum=list(importers.IMPORT_FORMATS),
            default="jsonl",
            description="jsonl: prompts and responses, one object per line. fgrlhf: a FineGrainedRLHF qa_feedback "
            "file (one JSON array), imported with its labels. trl: TRL preference rows (prompt, chosen, rejected) as "
            "JSON lines or Parquet, imported as pairwise labels. labelstudio: a Label Studio JSON export. argilla: "
            "Argilla v2 records (a JSON array or JSON lines, nested or flat). The last three keep their labels.",
        )
    ],
    request={
        "application/x-ndjson": OpenApiTypes.BINARY,
        "application/json": OpenApiTypes.BINARY,
        "application/vnd.apache.parquet": OpenApiTypes.BINARY,
        "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
    },
    responses={201: IMPORT_RESULT, 200: IMPORT_RESULT},
)
@api_view(["POST"])
def study_import(request, pk: int):
    """Import a file: the body itself, or a multipart field `file`.

    format=jsonl (default): prompts and responses as JSON lines. The others bring labels with them:
    fgrlhf (FineGrainedRLHF qa_feedback), trl (JSON lines or Parquet), labelstudio, argilla.
    """
    study = access.get_study(request.user, pk, "manage")
    format = request.query_params.get("format", "jsonl")
    importers.import_format_check(format)
    accepted, preferred = IMPORT_TYPES[format]
    content_type = request.content_type.split(";")[0].strip()
    if content_type.startswith("multipart/"):
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput("The multipart body has no field named file.", field="file")
        body = upload
    elif content_type in accepted:
        # Read the stream, not request.body: an import may be larger than DATA_UPLOAD_MAX_MEMORY_SIZE,
        # which guards form bodies held in memory, and JSON lines can be parsed as they arrive.
        stream = request.stream or io.BytesIO()
        body = iter(stream.readline, b"") if format == "jsonl" else stream.read()
    else:
        raise InvalidInput(
            f"Unsupported Content-Type {content_type or '(none)'} for format {format}; "
            f"send {preferred} or multipart/form-data with a file field.",
            field="Content-Type",
        )
    result = importers.study_file_import(study=study, format=format, file=body)
    counts = result.as_dict()
    created = any(value for name, value in counts.items() if name.endswith("_created"))
    # A repeat that added nothing is not a creation: 200, as for a repeated annotation.
    return Response(counts, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def shown_responses(assignment) -> list[dict]:
    """The query's responses in the order this assignment shows them: the first is A."""
    responses = assignment.query.ordered_responses()
    return [{"id": responses[p].pk, "text": responses[p].text} for p in assignment.display_order]


def next_query_payload(assignment) -> dict:
    query = assignment.query
    return {
        "id": query.pk,
        "kind": query.kind,
        "asks": query.asks,
        "prompt": query.prompt.messages,
        "responses": shown_responses(assignment),
        "assignment_id": assignment.pk,
        "expires_at": assignment.expires_at,
        **query_vocabulary(query),
    }


def query_vocabulary(query) -> dict:
    """The study's span categories and rating aspects, for queries that ask for them."""
    extra = {}
    if "spans" in query.asks:
        extra["span_taxonomy"] = [*query.study.span_taxonomy, {"key": MISSING_INFORMATION, "label": "Missing information"}]
    if "ratings" in query.asks:
        extra["rating_aspects"] = query.study.rating_aspects
    return extra


@extend_schema(responses={200: s.NextQuerySerializer, 204: None})
@api_view(["GET"])
def next_query(request, pk: int):
    """The caller's next query; 204 when nothing is left for them; 409 saying why when the study is
    paused or archived, or the caller reached its quota."""
    study = access.get_study(request.user, pk, "annotate")
    assignment = assignments.assignment_next(study=study, annotator=request.user)
    if assignment is None:
        reason = assignments.nothing_served_because(study=study, annotator=request.user)
        if reason:
            raise Conflict(reason.message)
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(next_query_payload(assignment))


ANSWER_FIELDS = frozenset(key for keys in feedback.ANSWER_KEYS.values() for key in keys)
SUBMIT_FIELDS = ANSWER_FIELDS | {"client_key", "active_ms"}


def json_object(request) -> dict:
    """The request's body, which must be a JSON object (the hot endpoints check fields themselves)."""
    body = request.data
    if not isinstance(body, dict):
        raise InvalidInput("The body must be a JSON object.", field="body")
    return body


def store_answer(request, store) -> tuple:
    """Pass the body's answer to `store` (annotation_submit or annotation_revise, partly applied).

    The service checks every field against the query (and names the one that is wrong), so the
    body goes to it as given; AnnotationSubmitSerializer documents it. This is the annotation loop's
    hot path, where a DRF serializer cost more than storing the answer.
    """
    body = json_object(request)
    unknown = sorted(set(body) - SUBMIT_FIELDS)
    if unknown:  # a misspelt field would otherwise be dropped, and its default stored instead
        raise InvalidInput(f"Unknown field {unknown[0]!r}; an answer takes {', '.join(sorted(SUBMIT_FIELDS))}.", field=unknown[0])
    return store(
        annotator=request.user,
        client_key=body.get("client_key"),
        answer={key: body[key] for key in ANSWER_FIELDS if key in body},
        active_ms=body.get("active_ms"),
    )


@extend_schema(
    parameters=[
        OpenApiParameter("next", str, enum=["1", "true"], description="Also return the caller's next query (or null) as `next`.")
    ],
    request=s.AnnotationSubmitSerializer,
    responses={201: s.AnnotationCreatedSerializer, 200: s.AnnotationCreatedSerializer},
)
@api_view(["POST"])
@parser_classes([JSONParser])  # JSON only: a form would send strength as the text "2"
def query_annotations(request, pk: int):
    """Answer a query. Repeating a submit with the same client_key returns the first annotation (200).

    With ?next=1 the reply also carries the caller's next query, as GET .../queries/next/ would.
    """
    query = access.get_query_for_annotator(request.user, pk)
    annotation, created = store_answer(request, partial(feedback.annotation_submit, query=query))
    reply = {"id": annotation.pk, "query": query.pk, "created": created}
    if request.query_params.get("next") in {"1", "true"}:
        # One round trip per label: the caller's next query (or null) rides along with the receipt.
        try:
            following = assignments.assignment_next(study=query.study, annotator=request.user)
        except NotQualified:  # the answer is stored; GET .../queries/next/ says why nothing follows (403)
            following = None
        reply["next"] = next_query_payload(following) if following else None
    return Response(reply, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(responses=s.RecentAnswerSerializer(many=True))
@api_view(["GET"])
def my_recent_annotations(request, pk: int):
    """The caller's answers in the study that they may still change (the last REVISABLE_ANSWERS), newest first."""
    study = access.get_study(request.user, pk, "annotate")
    return Response([recent_answer_payload(a) for a in recent_answers(study=study, annotator=request.user)])


def review_payload(review) -> dict:
    return {
        "id": review.pk,
        "annotation": review.annotation_id,
        "verdict": review.verdict,
        "note": review.note,
        "created_at": review.created_at,
    }


def latest_review(annotation) -> dict | None:
    """The newest review of an annotation whose `reviews` were prefetched or not."""
    found = sorted(annotation.reviews.all(), key=lambda r: r.pk)
    return review_payload(found[-1]) if found else None


def recent_answer_payload(annotation) -> dict:
    query, assignment = annotation.query, annotation.assignment
    assignment.query = query
    return {
        "id": annotation.pk,
        "query": query.pk,
        "kind": query.kind,
        "asks": query.asks,
        "prompt": query.prompt.messages,
        "responses": shown_responses(assignment),
        "answer": answer_of(annotation),
        "supersedes": annotation.supersedes_id,
        "review": latest_review(annotation),
        "answered_at": assignment.finished_at,
        "created_at": annotation.created_at,
    }


@extend_schema(
    request=s.AnnotationSubmitSerializer,
    responses={201: s.AnnotationRevisedSerializer, 200: s.AnnotationRevisedSerializer},
)
@api_view(["POST"])
@parser_classes([JSONParser])
def annotation_revise(request, pk: int):
    """Change one of the caller's recent answers in a study: the body is a whole new answer, as for
    POST .../annotations/, and it supersedes this annotation. Repeating it with the same client_key
    returns the first change (200)."""
    annotation = access.get_annotation_for_annotator(request.user, pk)
    revision, created = store_answer(request, partial(feedback.annotation_revise, annotation=annotation))
    reply = {"id": revision.pk, "query": revision.query_id, "supersedes": annotation.pk, "created": created}
    return Response(reply, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(
    request=s.SkipSerializer,
    responses=inline_serializer("SkipResult", {"query": serializers.IntegerField(), "skipped": serializers.BooleanField()}),
)
@api_view(["POST"])
@parser_classes([JSONParser])
def query_skip(request, pk: int):
    query = access.get_query_for_annotator(request.user, pk)
    reason = json_object(request).get("reason")
    if reason is not None and not isinstance(reason, str):
        raise InvalidInput(f"reason must be text, not {reason!r}.", field="reason")
    assignments.assignment_skip(query=query, annotator=request.user, reason=reason or "")
    return Response({"query": query.pk, "skipped": True})


@extend_schema(
    parameters=[
        OpenApiParameter("format", str, enum=list(exports.EXPORT_FORMATS), default="trl"),
        OpenApiParameter(
            "sources",
            str,
            description="trl and kto only: comma-separated preference sources among "
            f"{', '.join(exports.PREFERENCE_SOURCES)} (default all).",
        ),
        OpenApiParameter(
            "aggregate",
            str,
            enum=list(exports.AGGREGATES),
            description="trl only: one row per pairwise query, labelled by this aggregate of its votes.",
        ),
        OpenApiParameter(
            "exclude_flagged",
            str,
            description="1 to leave out the rows of answers with any bias flag, or a comma-separated list of "
            "flags among " + ", ".join(flags.FLAGS) + " (not with fgrlhf or aggregate).",
        ),
    ],
    responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY},
)
@api_view(["GET"])
def study_export(request, pk: int):
    """Stream the study's labels as JSON lines; counts (rows, and what was left out) come as X-Preflab-* headers.

    The row shapes of every format are described in annotate.services.exports.
    """
    study = access.get_study(request.user, pk, "export")
    export = exports.export_build(
        study=study,
        format=request.query_params.get("format", "trl"),
        sources=request.query_params.get("sources"),
        aggregate=request.query_params.get("aggregate"),
        exclude_flagged=request.query_params.get("exclude_flagged"),
    )
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in export.rows)
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-{export.format}.jsonl"'
    for name, value in export.counts.items():
        response["X-Preflab-" + name.replace("_", "-").title()] = str(value)
    return response


def min_shared_param(request) -> int:
    """The `min_shared` query parameter: a whole number from 1 to 10,000 (default MIN_SHARED)."""
    raw = request.query_params.get("min_shared")
    if raw is None:
        return agreement.MIN_SHARED
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise InvalidInput(f"min_shared must be a whole number from 1 to 10000, not {raw!r}.", field="min_shared")
    return int(raw)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "min_shared",
            int,
            default=agreement.MIN_SHARED,
            description="Items two annotators must share before their Cohen's kappa is listed.",
        )
    ],
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
def study_agreement(request, pk: int):
    """Agreement per kind of feedback (choices, ratings, rankings), for the study and each annotator.

    Each figure is `{value, items, ratings, reason}`: the items labelled twice or more that it rests
    on, and, where it is undefined (value null), why. The units and levels are described in
    annotate.selectors.agreement.
    """
    study = access.get_study(request.user, pk, "dashboard")
    return Response(agreement.study_agreement(study, min_shared=min_shared_param(request)))


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def study_flags(request, pk: int):
    """Bias flags per annotator with the numbers behind each, and the flags of every flagged current answer.

    Flags are evidence, not verdicts; what each one measures is described in annotate.selectors.flags.
    """
    study = access.get_study(request.user, pk, "dashboard")
    return Response(flags.study_flags(study))


def gold_payload(study) -> dict:
    return {
        "gold_rate": study.gold_rate,
        "qualification_items": study.qualification_items,
        "qualification_pass": study.qualification_pass,
        "gold_queries": study.queries.filter(is_gold=True).count(),
        "annotators": [
            {
                "annotator": row.username,
                "answered": row.answered,
                "correct": row.correct,
                "accuracy": row.accuracy,
                "interval": [row.low, row.high],
            }
            for row in gold_selectors.gold_accuracy(study=study)
        ],
    }


@extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
@api_view(["GET", "POST"])
@parser_classes([JSONParser])
def study_gold(request, pk: int):
    """Gold questions: each annotator's gold accuracy with its Wilson 95% interval (GET, dashboard).

    A POST `{query, answer}` (manage) marks one of the study's queries as gold with that answer,
    in the shape annotate.services.gold describes; `answer: null` makes it an ordinary query again.
    """
    if request.method == "GET":
        return Response(gold_payload(access.get_study(request.user, pk, "dashboard")))
    study = access.get_study(request.user, pk, "manage")
    body = json_object(request)
    query_id = body.get("query")
    query = study.queries.filter(pk=query_id).first() if is_int(query_id) else None
    if query is None:
        raise InvalidInput(f"query must be the id of one of this study's queries, not {query_id!r}.", field="query")
    if "answer" not in body:
        raise InvalidInput("answer is missing: give the gold answer, or null to unmark.", field="answer")
    query = gold.query_mark_gold(query=query, answer=body["answer"])
    return Response({"query": query.pk, "is_gold": query.is_gold, "answer": query.gold_answer})


@extend_schema(methods=["GET"], responses=s.RunSerializer(many=True))
@extend_schema(methods=["POST"], request=s.RunCreateSerializer, responses={201: s.RunSerializer})
@api_view(["GET", "POST"])
def study_runs(request, pk: int):
    """The study's training runs, newest first; a POST starts one."""
    if request.method == "GET":
        study = access.get_study(request.user, pk, "history")
        return Response(s.RunSerializer(study_selectors.study_runs(study), many=True).data)
    study = access.get_study(request.user, pk, "train")
    body = s.RunCreateSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    run = training.training_run_start(study=study, requested_by=request.user, **body.validated_data)
    return Response(s.RunSerializer(run).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=s.RunSerializer)
@api_view(["GET"])
def run_detail(request, pk: int):
    return Response(s.RunSerializer(access.get_run(request.user, pk)).data)


@extend_schema(request=None, responses=s.RunSerializer)
@api_view(["POST"])
def run_cancel(request, pk: int):
    run = access.get_run(request.user, pk, "train")
    return Response(s.RunSerializer(training.training_run_cancel(run=run)).data)


@extend_schema(methods=["GET"], responses=s.RoundSerializer(many=True))
@extend_schema(methods=["POST"], request=None, responses={201: s.RoundSerializer})
@api_view(["GET", "POST"])
def study_rounds(request, pk: int):
    """The round history; a manager's POST starts the loop, or ends the collecting round and moves to the next."""
    if request.method == "GET":
        study = access.get_study(request.user, pk, "dashboard")
        return Response(s.RoundSerializer(study.rounds.prefetch_related("runs").order_by("number"), many=True).data)
    study = access.get_study(request.user, pk, "manage")
    started = rounds.round_start(study=study, by=request.user)
    return Response(s.RoundSerializer(started).data, status=status.HTTP_201_CREATED)


@extend_schema(request=None, responses=s.LoopSerializer)
@api_view(["POST"])
def study_rounds_pause(request, pk: int):
    """Stop the loop from selecting the next round on its own; the current round goes on."""
    study = rounds.round_pause(study=access.get_study(request.user, pk, "manage"))
    return Response(s.LoopSerializer(study).data)


@extend_schema(request=None, responses=s.LoopSerializer)
@api_view(["POST"])
def study_rounds_resume(request, pk: int):
    """Let the loop move on again (selecting the next round now if it stopped between rounds)."""
    study = rounds.round_resume(study=access.get_study(request.user, pk, "manage"))
    return Response(s.LoopSerializer(study).data)


def status_action(action: str, doc: str) -> Callable:
    """The POST endpoint that takes the study status `action` (services.study_status); `doc` is its description."""

    def view(request, pk: int) -> Response:
        study = study_status.study_status_change(study=access.get_study(request.user, pk, "manage"), action=action)
        return Response(s.StudyStatusSerializer(study).data)

    view.__name__ = view.__qualname__ = f"study_{action}"
    view.__doc__ = doc
    return extend_schema(request=None, responses=s.StudyStatusSerializer)(api_view(["POST"])(view))


study_pause = status_action(
    "pause", "Stop serving the study's queries to annotators (answers to queries already held are still taken)."
)
study_resume = status_action("resume", "Serve a paused study's queries again.")
study_archive = status_action(
    "archive", "Make the study read-only and hide it from the study list; its dashboard and exports still work."
)
study_unarchive = status_action(
    "unarchive", "Make an archived study active again (a round loop that archiving paused stays paused)."
)
