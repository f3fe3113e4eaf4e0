"""A plain WSGI app behind SafeMediaMiddleware: lazy start_response, write(), file_wrapper.

``/stream/<name>`` is a generator that calls ``start_response`` on its first iteration,
``/write/<name>`` sends its body with the legacy ``write()`` callable, ``/static/<name>`` and
``/file/<name>`` return ``environ["wsgi.file_wrapper"]`` (``/static`` also answers ``Range`` with
206 and ``If-None-Match`` with 304, as a file server does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

from safemedia.wsgi import SafeMediaMiddleware
from tests.apps import wsgi_routes as routes
from tests.apps.common import IMAGES, test_runtime

runtime = test_runtime()


def _lazy(
    start_response: StartResponse, headers: list[tuple[str, str]], body: Iterable[bytes]
) -> Iterator[bytes]:
    start_response("200 OK", headers)
    yield from body


def _files(environ: WSGIEnvironment, start_response: StartResponse, name: str) -> Iterable[bytes]:
    path = IMAGES / name
    if not path.is_file():
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    stat = path.stat()
    etag = '"' + hashlib.md5(f"{stat.st_mtime_ns}-{stat.st_size}".encode()).hexdigest() + '"'
    headers = [("Content-Type", routes.media_type(name, None) or "application/octet-stream")]
    headers += [("ETag", etag), ("Accept-Ranges", "bytes")]
    if environ.get("HTTP_IF_NONE_MATCH") == etag:
        start_response("304 Not Modified", [("ETag", etag)])
        return []
    wanted = environ.get("HTTP_RANGE", "")
    if wanted.startswith("bytes=") and "-" in wanted and "," not in wanted:
        first, last = wanted[6:].split("-")
        start = int(first or 0)
        end = min(int(last), stat.st_size - 1) if last else stat.st_size - 1
        body = path.read_bytes()[start : end + 1]
        headers += [("Content-Range", f"bytes {start}-{end}/{stat.st_size}")]
        start_response("206 Partial Content", [*headers, ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [*headers, ("Content-Length", str(stat.st_size))])
    return environ["wsgi.file_wrapper"](path.open("rb"), 8192)  # type: ignore[no-any-return]


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path: str = environ.get("PATH_INFO", "/")
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    route, _, name = path.lstrip("/").partition("/")
    if route in ("static", "file"):
        return _files(environ, start_response, name)
    if route == "stream":
        kind = routes.media_type(name, query.get("type"))
        encoding = query.get("encoding", "")
        headers = [("Content-Type", kind)] if kind else []
        if encoding:
            headers.append(("Content-Encoding", encoding))
        body = routes.encoded(routes.image(name), encoding)
        return _lazy(start_response, headers, routes.chunks(body))
    if route == "write":
        write = start_response("200 OK", [("Content-Type", routes.media_type(name, None))])
        for chunk in routes.chunks(routes.image(name)):
            write(chunk)
        return []
    if route == "partial":
        body = routes.image(name)
        start_response(
            "206 Partial Content",
            [("Content-Type", "image/jpeg"), ("Content-Range", f"bytes 0-99/{len(body)}")],
        )
        return [body[:100]]
    if route == "gated":
        return _lazy(start_response, [("Content-Type", "text/plain")], routes.gated(query["key"]))
    if route == "text":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]
    if route == "_detections":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [routes.detections_body(runtime)]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


application = SafeMediaMiddleware(app, runtime=runtime)
