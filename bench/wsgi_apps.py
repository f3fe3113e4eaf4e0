"""The Flask app bench_wsgi.py serves through gunicorn: bare, and behind ``SafeMedia(app)``.

Two endpoints: ``/text`` (hello world: the middleware's cost at its largest share) and
``/page`` (a forum thread page rendered with Jinja2, :mod:`bench.forum_page`: a request with
real work). The bare app imports nothing of safemedia. ``wrapped()`` reads its configuration as
any deployment does: ``$SAFEMEDIA_CONFIG``. Two more arms split the wrapped app's cost
(``--decompose``): ``loaded()``, the bare app in a process that has built the runtime (engine,
hash lists, store, notifier thread) but does not call it, and ``null()``, the bare app behind a
WSGI middleware that only calls it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, request

from bench import forum_page

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

_kept: list[object] = []  # the runtime of loaded(), alive as long as the process


def bare() -> Flask:
    app = Flask("bench")

    @app.get("/text")
    def text() -> str:
        return "hello"

    @app.get("/page")
    def page() -> str:
        return forum_page.render(request.args.get("p", 1, type=int))

    return app


def wrapped() -> Flask:
    from safemedia.contrib.flask import SafeMedia  # here: the bare app does not load it

    app = bare()
    SafeMedia(app)
    return app


def loaded() -> Flask:
    """The bare app; the runtime built beside it (``Config.load()``), never called."""
    from safemedia.runtime import Runtime

    _kept.append(Runtime())
    return bare()


class _Null:
    """A WSGI middleware that only calls the app: what any wrapper costs."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.app(environ, start_response)


def null() -> Flask:
    """The bare app behind :class:`_Null`."""
    app = bare()
    app.wsgi_app = _Null(app.wsgi_app)  # type: ignore[method-assign]
    return app
