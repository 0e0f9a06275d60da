from django.conf import settings
from django.db import models

from annotate.models.studies import Study


class FileFormat(models.TextChoices):
    JSONL = "jsonl", "JSON lines"
    PARQUET = "parquet", "Parquet"
    HF = "hf", "Hugging Face datasets folder (tar)"


class DatasetExport(models.Model):
    """An immutable snapshot of a study's labels: one stored file, served byte for byte as it was written.

    `path` is relative to ARTIFACTS_DIR; `checksum` is the sha256 of that file. A row exists only
    once its file is complete (a failed build stores neither), so there is no "building" state.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="dataset_exports")
    format = models.CharField(max_length=16, help_text="The row format: one of annotate.services.exports.EXPORT_FORMATS.")
    file_format = models.CharField(max_length=8, choices=FileFormat.choices, default=FileFormat.JSONL)
    filters = models.JSONField(default=dict, blank=True)
    sources = models.CharField(max_length=64, blank=True)
    aggregate = models.CharField(max_length=32, blank=True)
    row_count = models.PositiveIntegerField()
    checksum = models.CharField(max_length=64)
    path = models.CharField(max_length=500)
    size = models.PositiveBigIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.format} export {self.pk} of {self.study}"

    @property
    def filters_text(self) -> str:
        """The filters in a line for people ("rounds 1, 2; min_agreement 0.8"), empty when there are none."""
        parts = [
            f"{key} {', '.join(map(str, value)) if isinstance(value, list) else value}" for key, value in self.filters.items()
        ]
        return "; ".join(parts)
