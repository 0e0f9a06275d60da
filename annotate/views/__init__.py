"""Browser pages: Django templates with htmx partials.

Every view goes through `annotate.views.errors.page`, which requires a login and maps the
project's errors to responses in one place.
"""
