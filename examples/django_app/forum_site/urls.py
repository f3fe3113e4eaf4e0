"""URLs of the Django example forum."""

from django.urls import path
from gallery import views

urlpatterns = [
    path("", views.gallery, name="gallery"),
    path("upload", views.upload, name="upload"),
    path("uploads/<str:name>", views.uploaded, name="uploaded"),
]
