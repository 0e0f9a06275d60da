"""The model registry over the API: list a study's model versions and score responses with one."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from annotate import access
from annotate.api.serializers import ModelVersionSerializer, NoUnknownFields
from annotate.errors import InvalidInput
from annotate.models import ModelVersion
from annotate.services.items import parse_messages
from annotate.services.scoring import model_version_score, study_responses_score
from annotate.text import refuse_unstorable


class ScoreItemSerializer(serializers.Serializer):
    prompt = serializers.JSONField(help_text="A string or a list of {role, content} messages.")
    response = serializers.CharField()


class ScoreRequestSerializer(NoUnknownFields, serializers.Serializer):
    response_ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=access.MAX_ID), required=False)
    items = ScoreItemSerializer(many=True, required=False)
    aggregate = serializers.CharField(required=False, default="mean", help_text="Ensembles: mean, wco or uwo.")


@extend_schema(responses=ModelVersionSerializer(many=True))
@api_view(["GET"])
def study_models(request, pk: int):
    study = access.get_study(request.user, pk, "history")
    return Response(ModelVersionSerializer(ModelVersion.objects.filter(study=study), many=True).data)


@extend_schema(request=ScoreRequestSerializer, responses={200: {"type": "object"}})
@api_view(["POST"])
def model_score(request, pk: int):
    """Score stored responses (response_ids) or any text (items) with one model version."""
    version = access.get_model_version(request.user, pk)
    study = version.study
    body = ScoreRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    if ("response_ids" in body.validated_data) == ("items" in body.validated_data):
        raise InvalidInput("Give either response_ids or items.", field="items")
    aggregate = body.validated_data["aggregate"]
    if "response_ids" in body.validated_data:
        ids = body.validated_data["response_ids"]
        scores = study_responses_score(version=version, study=study, response_ids=ids, aggregate=aggregate)
        reply = {"scores": [{"response": rid, "score": value} for rid, value in zip(ids, scores.values, strict=True)]}
    else:
        refuse_unstorable(body.validated_data["items"], "items")
        items = [
            (parse_messages(item["prompt"], f"items[{i}]"), item["response"])
            for i, item in enumerate(body.validated_data["items"])
        ]
        scores = model_version_score(version=version, items=items, aggregate=aggregate)
        reply = {"scores": scores.values}
    if scores.details is not None:
        reply["details"] = scores.details
    return Response({"model_version": version.pk, "kind": version.kind, **reply})
