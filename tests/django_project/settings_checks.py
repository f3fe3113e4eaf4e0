"""The test site's settings, broken in the way ``SMTEST_CHECKS`` names (for the system checks)."""

from __future__ import annotations

import os

from tests.django_project.settings import *  # noqa: F403

OURS = "safemedia.contrib.django.SafeMediaMiddleware"
WHITENOISE = "whitenoise.middleware.WhiteNoiseMiddleware"
GZIP = "django.middleware.gzip.GZipMiddleware"

variant = os.environ.get("SMTEST_CHECKS", "")
if variant:
    SAFEMEDIA_RUNTIME = None
if variant == "misordered":
    MIDDLEWARE = [WHITENOISE, OURS, GZIP]
    SAFEMEDIA = {"hash_lists": ["/nonexistent/safemedia-list.txt"]}
elif variant == "bad":
    SAFEMEDIA = {"max_body_bytes": "lots"}
elif variant == "no-lists":
    MIDDLEWARE = [WHITENOISE]
    SAFEMEDIA = {}
elif variant == "recommended":
    MIDDLEWARE = [GZIP, OURS, WHITENOISE]
    SAFEMEDIA = {"hash_lists": [os.environ["SMTEST_LIST"]]}
