from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


def create_cache_table(using: str, **kwargs) -> None:
    """The database cache's table (bad-token counts) exists wherever the schema does; a no-op with Redis.

    After every migrate rather than in one migration, so switching CACHE_URL back from Redis needs no step.
    """
    call_command("createcachetable", database=using, verbosity=0)


class AnnotateConfig(AppConfig):
    name = "annotate"
    verbose_name = "Preflab"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(create_cache_table, sender=self)
