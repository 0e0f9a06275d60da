"""API routes under /api/v1/; the trailing slash is optional so POSTs never hit a redirect."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from annotate.api import dataset_exports, registry, reviews, views
from annotate.api.errors import not_found

v1 = [
    (r"studies", views.study_list, "api-study-list"),
    (r"studies/(?P<pk>\d+)", views.study_detail, "api-study-detail"),
    (r"studies/(?P<pk>\d+)/members", views.study_members, "api-study-members"),
    (r"studies/(?P<pk>\d+)/pause", views.study_pause, "api-study-pause"),
    (r"studies/(?P<pk>\d+)/resume", views.study_resume, "api-study-resume"),
    (r"studies/(?P<pk>\d+)/archive", views.study_archive, "api-study-archive"),
    (r"studies/(?P<pk>\d+)/unarchive", views.study_unarchive, "api-study-unarchive"),
    (r"studies/(?P<pk>\d+)/import", views.study_import, "api-study-import"),
    (r"studies/(?P<pk>\d+)/queries/next", views.next_query, "api-next-query"),
    (r"studies/(?P<pk>\d+)/export", views.study_export, "api-study-export"),
    (r"studies/(?P<pk>\d+)/runs", views.study_runs, "api-study-runs"),
    (r"studies/(?P<pk>\d+)/agreement", views.study_agreement, "api-study-agreement"),
    (r"studies/(?P<pk>\d+)/flags", views.study_flags, "api-study-flags"),
    (r"studies/(?P<pk>\d+)/gold", views.study_gold, "api-study-gold"),
    (r"studies/(?P<pk>\d+)/rounds", views.study_rounds, "api-study-rounds"),
    (r"studies/(?P<pk>\d+)/rounds/pause", views.study_rounds_pause, "api-study-rounds-pause"),
    (r"studies/(?P<pk>\d+)/rounds/resume", views.study_rounds_resume, "api-study-rounds-resume"),
    (r"queries/(?P<pk>\d+)/annotations", views.query_annotations, "api-query-annotations"),
    (r"queries/(?P<pk>\d+)/skip", views.query_skip, "api-query-skip"),
    (r"studies/(?P<pk>\d+)/annotations/mine", views.my_recent_annotations, "api-my-recent-annotations"),
    (r"annotations/(?P<pk>\d+)/revise", views.annotation_revise, "api-annotation-revise"),
    (r"queries/(?P<pk>\d+)/answers", reviews.query_answers, "api-query-answers"),
    (r"annotations/(?P<pk>\d+)/review", reviews.annotation_review, "api-annotation-review"),
    (r"studies/(?P<pk>\d+)/reviews/mine", reviews.my_reviews, "api-my-reviews"),
    (r"runs/(?P<pk>\d+)", views.run_detail, "api-run-detail"),
    (r"runs/(?P<pk>\d+)/cancel", views.run_cancel, "api-run-cancel"),
    (r"studies/(?P<pk>\d+)/models", registry.study_models, "api-study-models"),
    (r"models/(?P<pk>\d+)/score", registry.model_score, "api-model-score"),
    (r"studies/(?P<pk>\d+)/exports", dataset_exports.study_dataset_exports, "api-study-dataset-exports"),
    (r"exports/(?P<pk>\d+)", dataset_exports.dataset_export_detail, "api-dataset-export-detail"),
    (r"exports/(?P<pk>\d+)/download", dataset_exports.dataset_export_download, "api-dataset-export-download"),
]

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    *[re_path(rf"^v1/{pattern}/?$", view, name=name) for pattern, view, name in v1],
    re_path(r"^", not_found),
]
