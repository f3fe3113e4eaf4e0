"""Django integration: every image a Django site serves is checked before it is sent.

Usage, in ``settings.py``::

    INSTALLED_APPS = [..., "safemedia.contrib.django"]          # system checks
    MIDDLEWARE = [
        "django.middleware.gzip.GZipMiddleware",                 # compression outside it
        "safemedia.contrib.django.SafeMediaMiddleware",          # above WhiteNoise
        "whitenoise.middleware.WhiteNoiseMiddleware",
        ...
    ]
    SAFEMEDIA = {"hash_lists": ["lists/known.txt"], "store": "sqlite:///var/safemedia.db"}
    # or SAFEMEDIA = BASE_DIR / "safemedia.toml"; without it, Config.load()

The middleware is sync and async capable; see :mod:`safemedia.contrib.django.middleware`.
The system checks (``safemedia.E001``... ``safemedia.W004``) are in
:mod:`safemedia.contrib.django.checks`.
"""

from safemedia.contrib.django.middleware import SafeMediaMiddleware, get_runtime

__all__ = ["SafeMediaMiddleware", "get_runtime"]
