#!/usr/bin/env python
"""Django's command-line utility for Preflab."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    if sys.argv[1:2] == ["quickstart"]:
        # The quickstart is a local trial on the embedded default: debug mode unless told otherwise.
        os.environ.setdefault("DEBUG", "1")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 - loads annotate.settings, which checks the environment
    except ImproperlyConfigured as exc:
        # A setting the operator must fix: say which and how, without a traceback around it.
        sys.exit(f"Preflab cannot start: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
