"""Settings for the Django example forum.

safemedia is the ``SafeMediaMiddleware`` line in ``MIDDLEWARE`` (above WhiteNoise, so static
images are checked too) and the ``SAFEMEDIA`` dict below. Run from this folder::

    gunicorn --bind 127.0.0.1:8000 forum_site.wsgi      # or: uvicorn forum_site.asgi:application
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A demo: never use this key, or DEBUG, in production.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "safemedia.contrib.django",  # system checks and `manage.py safemedia ...`
    "gallery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "safemedia.contrib.django.SafeMediaMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

SAFEMEDIA = {
    # The demo list holds the hashes of a harmless synthetic pattern (examples/demo/).
    "hash_lists": [BASE_DIR.parent / "demo" / "demo-list.txt"],
    # Detections, blocked URLs and the mail outbox, shared by every worker process.
    "store": f"sqlite:///{BASE_DIR / 'var' / 'safemedia.db'}",
    # Alerts go here once the address is verified (scripts/demo does that for you).
    "notify_to": "moderator@forum.example",
    # The demo's local SMTP sink (python examples/demo_tools.py smtp-sink), which prints mail.
    "smtp": {"host": "127.0.0.1", "port": 8025, "sender": "safemedia@forum.example"},
}

ROOT_URLCONF = "forum_site.urls"
WSGI_APPLICATION = "forum_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES: dict[str, dict[str, str]] = {}

# Static files (the logo, the stylesheet) are served by WhiteNoise straight from the apps'
# static folders, so the example runs without collectstatic.
STATIC_URL = "static/"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

UPLOADS_DIR = BASE_DIR / "uploads"
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
