"""The Flask app bench_wsgi.py serves through gunicorn: bare, and behind ``SafeMedia(app)``.

Two endpoints: ``/text`` (hello world: the middleware's cost at its largest share) and
``/page`` (a forum thread page rendered with Jinja2, :mod:`bench.forum_page`: a request with
real work). The bare app imports nothing of safemedia. ``wrapped()`` reads its configuration as
any deployment does: ``$SAFEMEDIA_CONFIG``.
"""

from __future__ import annotations

from flask import Flask, request

from bench import forum_page


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
