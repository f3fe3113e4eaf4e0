"""Start the adversarial apps under real servers on 127.0.0.1 (via ``tests.realserver``).

Usage::

    with app_server("uvicorn", site, config_path, workers=2) as server:
        httpx.get(server.url + "/static/clean-00.jpg")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.adversarial.site import Site
from tests.realserver import UVICORN, Server, serve

KINDS = ("uvicorn", "gunicorn")
ALL_KINDS = (*KINDS, "django")  # django: gunicorn + the Django site (WhiteNoise for /static/)


def command(kind: str, workers: int) -> list[str]:
    """The server command: uvicorn + the Starlette app, gunicorn (gthread) + the Flask app, or
    (``django``) gunicorn + the Django site.

    Keep-alive is 30 s (as behind a proxy): with the default 2 s, gunicorn closes a connection
    that a starved client is just reusing, and the client sees a reset that is not safemedia's.
    """
    if kind == "uvicorn":
        return [
            *UVICORN,
            "--workers",
            str(workers),
            "--timeout-keep-alive",
            "30",
            "tests.adversarial.apps.asgi_app:app",
        ]
    if kind in ("gunicorn", "django"):
        app = (
            "tests.adversarial.apps.flask_app:app"
            if kind == "gunicorn"
            else "tests.adversarial.apps.django_site:application"
        )
        return [
            "{python}",
            "-m",
            "gunicorn",
            "--bind",
            "127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--graceful-timeout",
            "5",
            "--keep-alive",
            "30",
            app,
        ]
    raise ValueError(f"unknown server kind {kind!r}")


@contextlib.contextmanager
def app_server(kind: str, site: Site, config: Path, *, workers: int = 1) -> Iterator[Server]:
    """Run the adversarial app for ``kind`` with ``config`` until the block ends."""
    env = {
        "SAFEMEDIA_CONFIG": str(config),
        "ADVERSARIAL_SITE": str(site.root),
        "DJANGO_SETTINGS_MODULE": "tests.adversarial.apps.django_site",
    }
    with serve(command(kind, workers), env=env, timeout=60) as server:
        yield server
