import collections

from django.contrib import admin

from annotate import models
from annotate.services.studies import study_delete, study_row_counts


@admin.register(models.Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "overlap", "selection_strategy", "loop_status", "current_round", "created_at"]

    # Django's collector lists every row's id in IN (...) lists, past PostgreSQL's 65,535 parameters
    # for a large study; the service deletes by subqueries, and removes the study's files too.
    def get_deleted_objects(self, objs, request):
        """The confirmation page's summary, counted per model rather than collected row by row."""
        counts = collections.Counter()
        for study in objs:
            for model, count in study_row_counts(study.pk).items():
                counts[str(model._meta.verbose_name_plural)] += count
        perms_needed = set() if self.has_delete_permission(request) else {str(models.Study._meta.verbose_name)}
        return [str(study) for study in objs], {name: n for name, n in counts.items() if n}, perms_needed, []

    def delete_model(self, request, obj):
        study_delete(study=obj)

    def delete_queryset(self, request, queryset):
        for study in queryset:
            study_delete(study=study)


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "study", "role"]
    list_filter = ["role"]


@admin.register(models.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "study", "kind", "status", "progress", "created_at"]
    list_filter = ["status", "kind"]


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["study", "kind", "version", "base_model", "created_at"]


@admin.register(models.Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["study", "number", "strategy", "chosen_by", "status", "selected", "labels", "heldout_accuracy"]
    list_filter = ["status", "strategy"]
