from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    name = "annotate"
    verbose_name = "Preflab"
    default_auto_field = "django.db.models.BigAutoField"
