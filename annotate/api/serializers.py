"""Shapes of the API's requests and replies. Domain rules live in the services."""

from collections.abc import Mapping

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotate.errors import InvalidInput
from annotate.metric_words import metric_words
from annotate.models import ModelVersion, Round, Study, TrainingRun
from annotate.models.feedback import PairwiseChoiceValue
from annotate.models.studies import Role
from annotate.models.training import RunKind
from annotate.numbers import is_int
from annotate.services.assignments import MAX_SKIP_REASON
from annotate.services.feedback import MAX_ACTIVE_MS
from annotate.services.studies import MAX_ANNOTATOR_QUOTA, MAX_OVERLAP, MAX_QUALIFICATION_ITEMS, MAX_ROUND_SIZE, STUDY_FIELDS
from learning.jobs import HAND_KINDS


class StrictIntegerField(serializers.IntegerField):
    """A JSON whole number only: DRF's own field would take "2", 2.0 and true (as 1)."""

    def to_internal_value(self, data):
        if not is_int(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """JSON text only: DRF's own field would store the number 5 as "5"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class NoUnknownFields:
    """A body's fields that the serializer does not take are refused, all named, not silently dropped."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = [name for name, field in self.fields.items() if not field.read_only]
            unknown = sorted(set(data) - set(writable), key=str)
            if unknown:
                raise InvalidInput(
                    f"Unknown or read-only field(s) {', '.join(map(repr, unknown))}; this body takes {', '.join(writable)}.",
                    field=str(unknown[0]),
                )
        return super().to_internal_value(data)


class StudySerializer(NoUnknownFields, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.PositiveIntegerField: StrictIntegerField,
        models.PositiveSmallIntegerField: StrictIntegerField,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }
    my_role = serializers.CharField(read_only=True)

    class Meta:
        model = Study
        fields = ["id", *STUDY_FIELDS, "loop_status", "current_round", "status", "created_at", "my_role"]
        # The status changes by its own actions (POST .../pause/, resume/, archive/, unarchive/).
        read_only_fields = ["id", "created_at", "my_role", "loop_status", "current_round", "status"]
        # The services' ranges, so the schema says them too (the model's validators depend on the database).
        extra_kwargs = {
            "overlap": {"max_value": MAX_OVERLAP},
            "round_size": {"min_value": 1, "max_value": MAX_ROUND_SIZE},
            "gold_rate": {"min_value": 0, "max_value": 1},
            "qualification_items": {"min_value": 0, "max_value": MAX_QUALIFICATION_ITEMS},
            "qualification_pass": {"min_value": 0, "max_value": 1},
            "annotator_quota": {"min_value": 0, "max_value": MAX_ANNOTATOR_QUOTA},
        }


class MemberSerializer(NoUnknownFields, serializers.Serializer):
    username = StrictCharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class MessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()


class ResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()


class NextQuerySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    asks = serializers.ListField(child=serializers.CharField())
    prompt = MessageSerializer(many=True)
    responses = ResponseSerializer(many=True, help_text="In the order to show them: the first is A.")
    assignment_id = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    span_taxonomy = serializers.ListField(child=serializers.DictField(), required=False)
    rating_aspects = serializers.ListField(child=serializers.DictField(), required=False)


class SpanSerializer(serializers.Serializer):
    response = serializers.IntegerField()
    start = serializers.IntegerField(allow_null=True, required=False, help_text="Code-point offset, inclusive.")
    end = serializers.IntegerField(allow_null=True, required=False, help_text="Code-point offset, exclusive.")
    category = serializers.CharField()
    note = serializers.CharField(required=False, allow_blank=True)


class CritiqueSerializer(serializers.Serializer):
    response = serializers.IntegerField()
    critique = serializers.CharField(allow_blank=True)
    revision = serializers.CharField(required=False, allow_blank=True, allow_null=True)


class RatingSerializer(serializers.Serializer):
    response = serializers.IntegerField()
    aspect = serializers.CharField()
    value = serializers.IntegerField()


class AnswerSerializer(serializers.Serializer):
    """The parts the query asks for (its `asks`); the service checks them against the query."""

    choice = serializers.ChoiceField(
        choices=PairwiseChoiceValue.choices, required=False, help_text="a/b refer to the order /next returned."
    )
    strength = serializers.IntegerField(min_value=1, max_value=3, required=False)
    ranking = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), required=False, help_text="Groups of ids, best first."
    )
    cannot_rank = serializers.CharField(required=False, allow_blank=True, help_text="A reason, instead of a ranking.")
    spans = SpanSerializer(many=True, required=False)
    critiques = CritiqueSerializer(many=True, required=False)
    ratings = RatingSerializer(many=True, required=False)


class AnnotationSubmitSerializer(AnswerSerializer):
    """Give the parts the query asks for (its `asks`); the service checks them against the query."""

    client_key = serializers.CharField(min_length=1, max_length=100)
    active_ms = serializers.IntegerField(
        min_value=0, max_value=MAX_ACTIVE_MS, required=False, help_text="The client's active time on task."
    )


class ReviewSerializer(serializers.Serializer):
    """A reviewer's verdict on one answer, with the note its annotator sees."""

    id = serializers.IntegerField()
    annotation = serializers.IntegerField()
    verdict = serializers.ChoiceField(choices=["accepted", "rejected"])
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class RecentAnswerSerializer(serializers.Serializer):
    """One of the caller's answers they may still change, as they gave it."""

    id = serializers.IntegerField(help_text="The annotation: POST /api/v1/annotations/{id}/revise/ changes it.")
    query = serializers.IntegerField()
    kind = serializers.CharField()
    asks = serializers.ListField(child=serializers.CharField())
    prompt = MessageSerializer(many=True)
    responses = ResponseSerializer(many=True, help_text="In the order they were shown: the first is A.")
    answer = AnswerSerializer(help_text="a/b as shown; send it back changed to revise.")
    supersedes = serializers.IntegerField(allow_null=True, help_text="The earlier version this one changed, if any.")
    review = ReviewSerializer(allow_null=True, help_text="A reviewer's latest verdict and note on it, or null.")
    answered_at = serializers.DateTimeField(help_text="When the query was first answered.")
    created_at = serializers.DateTimeField(help_text="When this version was given.")


class SkipSerializer(serializers.Serializer):
    reason = serializers.CharField(min_length=1, max_length=MAX_SKIP_REASON)


class AnnotationCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    query = serializers.IntegerField()
    created = serializers.BooleanField()
    next = NextQuerySerializer(required=False, allow_null=True, help_text="With ?next=1 only: the next query, or null.")


class AnnotationRevisedSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The new annotation.")
    query = serializers.IntegerField()
    supersedes = serializers.IntegerField(help_text="The annotation it replaces, kept in raw exports.")
    created = serializers.BooleanField()


class ImportResultSerializer(serializers.Serializer):
    prompts_created = serializers.IntegerField()
    prompts_unchanged = serializers.IntegerField()
    responses_created = serializers.IntegerField()
    queries_created = serializers.IntegerField()


# The kinds a user may start (a round's own steps are started by the loop); named in the schema
# by SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"], apart from every run's kind.
HAND_RUN_KINDS = [(value, label) for value, label in RunKind.choices if value in HAND_KINDS]


class RunCreateSerializer(NoUnknownFields, serializers.Serializer):
    kind = serializers.ChoiceField(choices=HAND_RUN_KINDS)
    config = serializers.DictField(required=False, default=dict)


class MetricWordsSerializer(serializers.Serializer):
    label = serializers.CharField()
    explanation = serializers.CharField(help_text="One line on what it measures; empty for a metric without words yet.")


class ModelVersionSerializer(serializers.ModelSerializer):
    metric_labels = serializers.SerializerMethodField(help_text="Per metric name: its label and explanation, as pages show it.")

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "kind",
            "version",
            "base_model",
            "artifact_path",
            "checksum",
            "metrics",
            "metric_labels",
            "data_hash",
            "parent",
            "created_at",
        ]

    @extend_schema_field(serializers.DictField(child=MetricWordsSerializer()))
    def get_metric_labels(self, version: ModelVersion) -> dict:
        return {name: metric_words(name)._asdict() for name in version.metrics or {}}


class RunSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "study",
            "kind",
            "config",
            "status",
            "progress",
            "step",
            "total_steps",
            "loss",
            "eta_seconds",
            "message",
            "metrics",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "model_version",
        ]

    def get_model_version(self, run: TrainingRun) -> dict | None:
        version = getattr(run, "model_version", None)  # a reverse one-to-one: absent raises an AttributeError
        return ModelVersionSerializer(version).data if version else None


class RoundSerializer(serializers.ModelSerializer):
    """One round of the study's loop; held-out accuracy is that of the model trained after it."""

    runs = serializers.SerializerMethodField(
        help_text="The round's jobs (training runs of any kind: features, selection, reward) in the order they started."
    )

    class Meta:
        model = Round
        fields = [
            "id",
            "number",
            "strategy",
            "params",
            "chosen_by",
            "size",
            "selected",
            "status",
            "message",
            "progress",
            "model_version",
            "trained_version",
            "runs",
            "labels",
            "heldout_accuracy",
            "heldout_accuracy_low",
            "heldout_accuracy_high",
            "created_at",
            "selected_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_runs(self, round_: Round) -> list[int]:
        return sorted(run.pk for run in round_.runs.all())  # prefetched for a history


class LoopSerializer(serializers.Serializer):
    """Where the study's round loop stands."""

    loop_status = serializers.CharField()
    current_round = serializers.IntegerField()


class StudyStatusSerializer(serializers.Serializer):
    """Whether the study serves queries: active, paused or archived (read-only)."""

    status = serializers.CharField()
