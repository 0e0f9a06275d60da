from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from annotate.views import queue, reviews, runs, studies, study_settings, workspace

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", studies.study_list, name="study-list"),
    # The breadcrumb says "Studies"; a visitor who types the address it suggests lands on the list.
    path("studies/", RedirectView.as_view(pattern_name="study-list")),
    path("studies/new/", studies.study_new, name="study-new"),
    path("studies/<int:study_id>/", studies.study_dashboard, name="study-dashboard"),
    path("studies/<int:study_id>/members/", studies.study_member_add, name="study-member-add"),
    path("studies/<int:study_id>/gold/", studies.study_gold_mark, name="study-gold-mark"),
    path("studies/<int:study_id>/import/", studies.study_import, name="study-import"),
    path("studies/<int:study_id>/train/", studies.study_train, name="study-train"),
    path("studies/<int:study_id>/runs/", studies.study_runs, name="study-runs"),
    path("studies/<int:study_id>/rounds/<str:action>/", studies.study_rounds_act, name="study-rounds-act"),
    path("studies/<int:study_id>/settings/", study_settings.study_settings, name="study-settings"),
    path(
        "studies/<int:study_id>/settings/guidelines-preview/",
        study_settings.study_guidelines_preview,
        name="study-guidelines-preview",
    ),
    path("studies/<int:study_id>/queue/", queue.study_queue, name="study-queue"),
    path("studies/<int:study_id>/status/<str:action>/", study_settings.study_status_act, name="study-status-act"),
    path("studies/<int:study_id>/annotate/", workspace.workspace, name="workspace"),
    path("studies/<int:study_id>/annotate/<int:query_id>/submit/", workspace.workspace_submit, name="workspace-submit"),
    path("studies/<int:study_id>/annotate/<int:query_id>/skip/", workspace.workspace_skip, name="workspace-skip"),
    path("studies/<int:study_id>/annotate/back/", workspace.workspace_back, name="workspace-back"),
    path(
        "studies/<int:study_id>/annotate/answers/<int:annotation_id>/change/",
        workspace.workspace_revise,
        name="workspace-revise",
    ),
    path("studies/<int:study_id>/review/", reviews.review_list, name="review-list"),
    path("studies/<int:study_id>/review/<int:query_id>/", reviews.review_query, name="review-query"),
    path("studies/<int:study_id>/review/answers/<int:annotation_id>/", reviews.review_submit, name="review-submit"),
    path("runs/<int:run_id>/", runs.run_detail, name="run-detail"),
    path("runs/<int:run_id>/progress/", runs.run_progress, name="run-progress"),
    path("runs/<int:run_id>/cancel/", runs.run_cancel, name="run-cancel"),
]
