"""The Flask app bench_wsgi.py serves through gunicorn: bare, and behind ``SafeMedia(app)``.

``wrapped()`` reads its configuration as any deployment does: ``$SAFEMEDIA_CONFIG``.
"""

from __future__ import annotations

from flask import Flask

from safemedia.contrib.flask import SafeMedia


def bare() -> Flask:
    app = Flask("bench")

    @app.get("/text")
    def text() -> str:
        return "hello"

    return app


def wrapped() -> Flask:
    app = bare()
    SafeMedia(app)
    return app
