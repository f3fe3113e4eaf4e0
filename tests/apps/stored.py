"""A tiny file server behind safemedia with the real store and notifier, as WSGI and ASGI.

The config comes from ``SAFEMEDIA_CONFIG`` (hash lists, store, SMTP, notify_to) and the runtime is
built as an app builds it, ``Runtime(config)``: the real engine with the store's allow-list, the
store as recorder, the notifier started. So every worker process opens the same SQLite file and
runs its own notifier. ``SMTEST_DIR`` holds ``images/`` (see ``tests.imageset``). ``/pid``
answers with the worker's process id.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from safemedia import Config
from safemedia.asgi import SafeMediaMiddleware as AsgiMiddleware
from safemedia.runtime import Runtime
from safemedia.wsgi import SafeMediaMiddleware as WsgiMiddleware
from tests.apps.common import IMAGES

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

runtime = Runtime(Config.load())


def files(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = str(environ.get("PATH_INFO", ""))
    if path == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    name = path.removeprefix("/images/")
    target = IMAGES / name
    if "/" in name or not target.is_file():
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    body = target.read_bytes()
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


async def pid(request: Request) -> Response:
    return PlainTextResponse(str(os.getpid()))


wsgi = WsgiMiddleware(files, runtime=runtime)
asgi = Starlette(
    routes=[Route("/pid", pid), Mount("/images", StaticFiles(directory=IMAGES))],
    middleware=[Middleware(AsgiMiddleware, runtime=runtime)],
)
