from django.contrib import admin

from annotate import models


@admin.register(models.Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "overlap", "selection_strategy", "loop_status", "current_round", "created_at"]


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
