"""Flask integration: every image a Flask app serves is checked before it is sent.

Usage::

    from safemedia.contrib.flask import SafeMedia

    app = Flask(__name__)
    app.config["SAFEMEDIA"] = {"hash_lists": ["lists/known.txt"], "store": "sqlite:///sm.db"}
    SafeMedia(app)

    # or, in an application factory
    safemedia = SafeMedia()
    def create_app():
        app = Flask(__name__)
        app.config["SAFEMEDIA"] = "safemedia.toml"     # a path works too
        safemedia.init_app(app)
        return app

``app.config["SAFEMEDIA"]`` takes the keys of the TOML ``[safemedia]`` table as a dict, or the
path of a TOML file; without it, :meth:`Config.load` (``$SAFEMEDIA_CONFIG``, else
``./safemedia.toml``). ``init_app`` wraps ``app.wsgi_app`` in
:class:`safemedia.wsgi.SafeMediaMiddleware` and keeps it in ``app.extensions["safemedia"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safemedia.config import Config
from safemedia.contrib import config_from_setting
from safemedia.runtime import Runtime
from safemedia.wsgi import SafeMediaMiddleware

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["SafeMedia"]


class SafeMedia:
    """The Flask extension. ``config`` or ``runtime`` override ``app.config["SAFEMEDIA"]``."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        config: Config | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self._config = config
        self._runtime = runtime
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Wrap ``app.wsgi_app``; the middleware goes in ``app.extensions["safemedia"]``."""
        if "safemedia" in app.extensions:
            raise RuntimeError("SafeMedia is already set up on this Flask app")
        runtime = self._runtime
        if runtime is None:
            config = self._config
            if config is None:
                config = config_from_setting(app.config.get("SAFEMEDIA"))
            runtime = Runtime(config)
        middleware = SafeMediaMiddleware(app.wsgi_app, runtime=runtime)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        app.extensions["safemedia"] = middleware

    @staticmethod
    def middleware(app: Flask) -> SafeMediaMiddleware:
        """The middleware set up on ``app`` (its ``runtime`` holds the engine and recorder)."""
        found: Any = app.extensions.get("safemedia")
        if not isinstance(found, SafeMediaMiddleware):
            raise RuntimeError("SafeMedia is not set up on this Flask app")
        return found
