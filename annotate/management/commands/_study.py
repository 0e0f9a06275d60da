"""Finding the study a command names, by id or by exact name."""

from django.core.management.base import CommandError

from annotate.models import Study


def find_study(ref: str) -> Study:
    study = Study.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
    if study is None:
        matches = list(Study.objects.filter(name=ref)[:2])
        if len(matches) > 1:
            raise CommandError(f"Several studies are named {ref!r}; give its id instead.")
        study = matches[0] if matches else None
    if study is None:
        raise CommandError(f"No study with id or name {ref!r}.")
    return study
