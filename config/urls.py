from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
handler404 = "config.api_errors.not_found"
handler500 = "config.api_errors.server_error"
