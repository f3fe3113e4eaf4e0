"""A small Django site for the integration tests: uploads through a view, static via WhiteNoise.

SafeMediaMiddleware sits above WhiteNoise. The runtime is the tests' (``SAFEMEDIA_RUNTIME``):
the stand-in engine watching the test list and an in-memory recorder read at ``/_detections``.
"""

from __future__ import annotations

import os
from typing import Any

from tests.apps.common import IMAGES

# SMTEST_NO_WHITENOISE=1: only safemedia's middleware, so it runs async under ASGI (WhiteNoise is
# sync-only and makes Django run the middleware above it sync); /static/ is then a view.
NO_WHITENOISE = os.environ.get("SMTEST_NO_WHITENOISE") == "1"

SECRET_KEY = "safemedia tests only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["safemedia.contrib.django"]
MIDDLEWARE = [
    "safemedia.contrib.django.SafeMediaMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
]
if NO_WHITENOISE:
    MIDDLEWARE = MIDDLEWARE[:1]
ROOT_URLCONF = "tests.django_project.urls"
STATIC_URL = "/static/"
STATIC_ROOT = IMAGES
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
SAFEMEDIA_RUNTIME: str | None = "tests.apps.common.test_runtime"
if os.environ.get("SMTEST_CONFIG"):  # nothing stood in: the real engine and store
    SAFEMEDIA: Any = os.environ["SMTEST_CONFIG"]
    SAFEMEDIA_RUNTIME = None
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
