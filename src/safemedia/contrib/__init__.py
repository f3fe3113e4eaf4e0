"""Framework integrations (Flask, Django) over the WSGI and ASGI adapters.

Their settings (Flask's ``app.config["SAFEMEDIA"]``, Django's ``settings.SAFEMEDIA``) take the
same keys as the TOML ``[safemedia]`` table, as a dict, or the path of a TOML file;
:func:`config_from_setting` turns either into a :class:`~safemedia.config.Config`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from safemedia.config import Config, ConfigError, apply_env

__all__ = ["config_from_setting"]


def config_from_setting(value: Any, *, setting: str = "SAFEMEDIA") -> Config:
    """A :class:`Config` from a framework setting: a Config, a dict of keys, a path, or None.

    None means :meth:`Config.load` (``$SAFEMEDIA_CONFIG``, else ``./safemedia.toml``).
    ``SAFEMEDIA_*`` environment variables override single keys of a dict, as they do for a
    file. Errors name the setting.
    """
    try:
        if value is None:
            return Config.load()
        if isinstance(value, Config):
            return value
        if isinstance(value, (str, os.PathLike)):
            return Config.from_file(value)
        if isinstance(value, Mapping):
            return Config.from_mapping(apply_env(value, os.environ))
    except ConfigError as exc:
        raise ConfigError(f"{setting}: {exc}") from None
    raise ConfigError(
        f"{setting}: expected a dict of safemedia keys or the path of a TOML file, "
        f"got {type(value).__name__}"
    )
