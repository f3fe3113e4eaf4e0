"""The gallery app: upload form, gallery page, uploads served by a view."""

from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
