from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from annotate.views import queue, reviews, runs, studies, study_settings, workspace

# The pages of one study, under studies/<study_id>/.
study_urls = [
    path("", studies.study_dashboard, name="study-dashboard"),
    path("members/", studies.study_member_add, name="study-member-add"),
    path("gold/", studies.study_gold_mark, name="study-gold-mark"),
    path("import/", studies.study_import, name="study-import"),
    path("train/", studies.study_train, name="study-train"),
    path("runs/", studies.study_runs, name="study-runs"),
    path("rounds/<str:action>/", studies.study_rounds_act, name="study-rounds-act"),
    path("settings/", study_settings.study_settings, name="study-settings"),
    path("settings/guidelines-preview/", study_settings.study_guidelines_preview, name="study-guidelines-preview"),
    path("queue/", queue.study_queue, name="study-queue"),
    path("status/<str:action>/", study_settings.study_status_act, name="study-status-act"),
    path("annotate/", workspace.workspace, name="workspace"),
    path("annotate/<int:query_id>/submit/", workspace.workspace_submit, name="workspace-submit"),
    path("annotate/<int:query_id>/skip/", workspace.workspace_skip, name="workspace-skip"),
    path("annotate/back/", workspace.workspace_back, name="workspace-back"),
    path("annotate/answers/<int:annotation_id>/change/", workspace.workspace_revise, name="workspace-revise"),
    path("review/", reviews.review_list, name="review-list"),
    path("review/<int:query_id>/", reviews.review_query, name="review-query"),
    path("review/answers/<int:annotation_id>/", reviews.review_submit, name="review-submit"),
]

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", studies.study_list, name="study-list"),
    # The breadcrumb says "Studies"; a visitor who types the address it suggests lands on the list.
    path("studies/", RedirectView.as_view(pattern_name="study-list")),
    path("studies/new/", studies.study_new, name="study-new"),
    path("studies/<int:study_id>/", include(study_urls)),
    path("runs/<int:run_id>/", runs.run_detail, name="run-detail"),
    path("runs/<int:run_id>/progress/", runs.run_progress, name="run-progress"),
    path("runs/<int:run_id>/cancel/", runs.run_cancel, name="run-cancel"),
]
