from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("annotate.api.urls")),
    path("", include("annotate.views.urls")),
]

# An unexpected error in the API is JSON too (a database that cannot be reached is a 503: annotate/middleware.py).
handler500 = "annotate.views.errors.server_error"
