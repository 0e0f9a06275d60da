"""Review over the API: a query's answers side by side, a verdict on one, and the notes an annotator got."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from annotate import access
from annotate.api.serializers import ReviewSerializer
from annotate.api.views import json_object, latest_review, review_payload
from annotate.errors import InvalidInput
from annotate.selectors import reviews as review_selectors
from annotate.services import reviews


@extend_schema(
    responses=inline_serializer(
        "QueryAnswer",
        {
            "id": serializers.IntegerField(),
            "annotator": serializers.CharField(help_text="The username for managers, the export pseudonym for reviewers."),
            "answer": serializers.DictField(help_text="As submitted, but a/b in the query's own order."),
            "created_at": serializers.DateTimeField(),
            "review": ReviewSerializer(allow_null=True),
        },
        many=True,
    )
)
@api_view(["GET"])
def query_answers(request, pk: int):
    """A query's current answers side by side (managers and reviewers), each with its latest review."""
    query = access.get_query_for_review(request.user, pk)
    return Response(
        [
            {
                "id": a.pk,
                "annotator": review_selectors.answerer_name(a, query.study.my_role),
                "answer": review_selectors.reviewed_answer(a),
                "created_at": a.created_at,
                "review": latest_review(a),
            }
            for a in review_selectors.query_answers(query)
        ]
    )


@extend_schema(
    request=inline_serializer(
        "ReviewRequest",
        {"verdict": serializers.ChoiceField(choices=["accepted", "rejected"]), "note": serializers.CharField(required=False)},
    ),
    responses={201: ReviewSerializer, 200: ReviewSerializer},
)
@api_view(["POST"])
@parser_classes([JSONParser])
def annotation_review(request, pk: int):
    """Accept or reject an answer (managers and reviewers). A rejected answer is kept, marked, and its
    query returns to the pool; rejecting it again returns the first rejection (200)."""
    annotation = access.get_annotation_for_review(request.user, pk)
    body = json_object(request)
    unknown = sorted(set(body) - {"verdict", "note"})
    if unknown:
        raise InvalidInput(f"Unknown field {unknown[0]!r}.", field=unknown[0])
    review, created = reviews.annotation_review(
        annotation=annotation, reviewer=request.user, verdict=body.get("verdict"), note=body.get("note", "")
    )
    return Response(review_payload(review), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(responses=ReviewSerializer(many=True))
@api_view(["GET"])
def my_reviews(request, pk: int):
    """The reviews of the caller's answers that carry a note or a rejection, newest first."""
    study = access.get_study(request.user, pk, "annotate")
    return Response([review_payload(r) for r in review_selectors.reviews_for_annotator(study=study, annotator=request.user)])
