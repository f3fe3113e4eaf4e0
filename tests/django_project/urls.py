"""Routes of the test site (the same as the other test apps, plus ``/uploads/``)."""

from __future__ import annotations

from django.urls import path
from django.views.static import serve

from tests.apps.common import IMAGES
from tests.django_project import views
from tests.django_project.settings import NO_WHITENOISE

urlpatterns = [
    path("uploads/<path:path>", serve, {"document_root": IMAGES}),
    path("file/<str:name>", views.file),
    path("stream/<str:name>", views.stream),
    path("partial/<str:name>", views.partial),
    path("gated", views.gated),
    path("text", views.text),
    path("_detections", views.detections),
]
if NO_WHITENOISE:
    urlpatterns.append(path("static/<path:path>", serve, {"document_root": IMAGES}))
