"""Django system checks for a safemedia set-up (``manage.py check``).

==================  =========================================================================
``safemedia.E001``  ``SAFEMEDIA`` is not a valid configuration (the message names the key)
``safemedia.E002``  ``SAFEMEDIA_RUNTIME`` cannot be imported
``safemedia.E003``  a hash-list file in the configuration does not exist
``safemedia.W001``  the middleware is not in ``MIDDLEWARE``
``safemedia.W002``  the middleware is below WhiteNoise: static images are served unchecked
``safemedia.W003``  no hash lists are configured: nothing can match
``safemedia.W004``  the middleware is above ``GZipMiddleware``: it checks compressed bodies
==================  =========================================================================
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from safemedia.config import Config, ConfigError
from safemedia.contrib import config_from_setting

MIDDLEWARE_PATH = "safemedia.contrib.django.SafeMediaMiddleware"
WHITENOISE_PATH = "whitenoise.middleware.WhiteNoiseMiddleware"
GZIP_PATH = "django.middleware.gzip.GZipMiddleware"


def check_setup(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every safemedia check; registered by the ``safemedia.contrib.django`` app."""
    return [*check_middleware_order(), *check_configuration()]


def check_middleware_order() -> list[CheckMessage]:
    middleware = [str(m) for m in getattr(settings, "MIDDLEWARE", None) or ()]
    if MIDDLEWARE_PATH not in middleware:
        return [
            Warning(
                f"{MIDDLEWARE_PATH} is not in MIDDLEWARE: no response is checked.",
                hint=f"Add {MIDDLEWARE_PATH!r} to MIDDLEWARE, above WhiteNoise.",
                id="safemedia.W001",
            )
        ]
    messages: list[CheckMessage] = []
    ours = middleware.index(MIDDLEWARE_PATH)
    if WHITENOISE_PATH in middleware and middleware.index(WHITENOISE_PATH) < ours:
        messages.append(
            Warning(
                f"{MIDDLEWARE_PATH} is below {WHITENOISE_PATH}: WhiteNoise answers static files "
                "before safemedia sees them, so static images are served unchecked.",
                hint=f"Move {MIDDLEWARE_PATH!r} above {WHITENOISE_PATH!r} in MIDDLEWARE.",
                id="safemedia.W002",
            )
        )
    if GZIP_PATH in middleware and middleware.index(GZIP_PATH) > ours:
        messages.append(
            Warning(
                f"{MIDDLEWARE_PATH} is above {GZIP_PATH}: it sees compressed bodies and must "
                "decompress every one to check it.",
                hint=f"Move {MIDDLEWARE_PATH!r} below {GZIP_PATH!r} in MIDDLEWARE.",
                id="safemedia.W004",
            )
        )
    return messages


def check_configuration() -> list[CheckMessage]:
    factory = getattr(settings, "SAFEMEDIA_RUNTIME", None)
    if isinstance(factory, str):
        try:
            import_string(factory)
        except ImportError as exc:
            return [
                Error(
                    f"SAFEMEDIA_RUNTIME {factory!r} cannot be imported: {exc}",
                    id="safemedia.E002",
                )
            ]
    if factory and not hasattr(settings, "SAFEMEDIA"):
        return []  # the runtime brings its own configuration
    try:
        config = config_from_setting(getattr(settings, "SAFEMEDIA", None))
    except ConfigError as exc:
        return [
            Error(
                str(exc),
                hint="SAFEMEDIA takes the keys of the [safemedia] TOML table as a dict, or the "
                "path of a TOML file; without it SAFEMEDIA_CONFIG or ./safemedia.toml is read.",
                id="safemedia.E001",
            )
        ]
    return _check_lists(config)


def _check_lists(config: Config) -> list[CheckMessage]:
    if not config.hash_lists:
        return [
            Warning(
                "safemedia has no hash lists configured: no image can match.",
                hint="Set 'hash_lists' in SAFEMEDIA to the files of the lists you were given.",
                id="safemedia.W003",
            )
        ]
    return [
        Error(f"hash list file not found: {entry.path}", id="safemedia.E003")
        for entry in config.hash_lists
        if not entry.path.is_file()
    ]
