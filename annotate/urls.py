from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("annotate.api.urls")),
    path("", include("annotate.views.urls")),
]
