"""Versioned research exports over the API: create a snapshot, list them, read one, download its stored bytes."""

from __future__ import annotations

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from annotate import access
from annotate.api.serializers import NoUnknownFields, StrictCharField
from annotate.errors import Gone
from annotate.models import DatasetExport
from annotate.models.exports import FileFormat
from annotate.selectors.aggregate import AGGREGATES
from annotate.services.dataset_exports import FILTER_KEYS, dataset_export_create, dataset_export_file
from annotate.services.exports import EXPORT_FORMATS

CONTENT_TYPES = {
    FileFormat.JSONL: "application/x-ndjson; charset=utf-8",
    FileFormat.PARQUET: "application/vnd.apache.parquet",
    FileFormat.HF: "application/x-tar",
}
EXTENSIONS = {FileFormat.JSONL: "jsonl", FileFormat.PARQUET: "parquet", FileFormat.HF: "tar"}


class DatasetExportCreateSerializer(NoUnknownFields, serializers.Serializer):
    format = serializers.ChoiceField(choices=EXPORT_FORMATS, default="trl", help_text="The row format.")
    file_format = serializers.ChoiceField(choices=FileFormat.choices, default=FileFormat.JSONL)
    filters = serializers.JSONField(
        required=False, help_text=f"Any of {', '.join(FILTER_KEYS)}; see annotate/services/dataset_exports.py."
    )
    sources = StrictCharField(required=False, help_text="trl and kto only, as for the plain export.")
    aggregate = serializers.ChoiceField(choices=AGGREGATES, required=False, help_text="trl only, as for the plain export.")


class DatasetExportSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = DatasetExport
        fields = [
            "id",
            "study",
            "format",
            "file_format",
            "filters",
            "sources",
            "aggregate",
            "row_count",
            "checksum",
            "size",
            "created_by",
            "created_at",
            "download",
        ]

    def get_download(self, export: DatasetExport) -> str:
        return reverse("api-dataset-export-download", kwargs={"pk": export.pk})


@extend_schema(methods=["GET"], responses=DatasetExportSerializer(many=True))
@extend_schema(methods=["POST"], request=DatasetExportCreateSerializer, responses={201: DatasetExportSerializer})
@api_view(["GET", "POST"])
@parser_classes([JSONParser])
def study_dataset_exports(request, pk: int):
    """List a study's snapshots, or write a new one (its file is complete when the reply comes)."""
    study = access.get_study(request.user, pk, "export")
    if request.method == "GET":
        return Response(DatasetExportSerializer(DatasetExport.objects.filter(study=study), many=True).data)
    body = DatasetExportCreateSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    export = dataset_export_create(study=study, by=request.user, **body.validated_data)
    return Response(DatasetExportSerializer(export).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=DatasetExportSerializer)
@api_view(["GET"])
def dataset_export_detail(request, pk: int):
    return Response(DatasetExportSerializer(access.get_dataset_export(request.user, pk)).data)


@extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
@api_view(["GET"])
def dataset_export_download(request, pk: int):
    """The snapshot's stored file, the same bytes every time; its sha256 in X-Preflab-Checksum."""
    export = access.get_dataset_export(request.user, pk)
    path = dataset_export_file(export)
    if not path.is_file():
        raise Gone(f"The file of dataset export {export.pk} is no longer on the server.")
    name = f"study-{export.study_id}-export-{export.pk}-{export.format}.{EXTENSIONS[export.file_format]}"
    response = FileResponse(path.open("rb"), as_attachment=True, filename=name, content_type=CONTENT_TYPES[export.file_format])
    response["X-Preflab-Checksum"] = export.checksum
    response["X-Preflab-Rows"] = str(export.row_count)
    return response
