"""The learner-facing site (server-rendered pages)."""
from django.urls import path

urlpatterns: list = []
