"""Framework-free pieces of the WSGI test apps (plain WSGI, Flask, Django).

Every app serves the same routes as the ASGI test apps, so one set of checks runs against all:
``/static/<name>`` (the framework's file serving), ``/stream/<name>?type=&encoding=`` (a
generator in 1000-byte chunks), ``/file/<name>``, ``/partial/<name>`` (an app that answers 206
by itself), ``/gated?key=K`` (a text stream whose second chunk waits until the test creates the
file ``release-K``, so it works with one sync worker), ``/text``, ``/_detections``.
"""

from __future__ import annotations

import gzip
import json
import mimetypes
import time
import zlib
from collections.abc import Iterator

from safemedia.runtime import Runtime
from tests.apps.common import IMAGES, TEST_DIR, decodes, detections_json

CHUNK = 1000


def encoded(body: bytes, encoding: str) -> bytes:
    """``body`` in a content-coding; ``br`` is a label only (it must never be decoded)."""
    if encoding in ("gzip", "br"):
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


def media_type(name: str, override: str | None) -> str:
    """The ``?type=`` override, else the type the file name suggests ("" for none)."""
    if override is not None:
        return override
    return mimetypes.guess_type(name)[0] or ""


def image(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def chunks(body: bytes) -> Iterator[bytes]:
    for i in range(0, len(body), CHUNK):
        yield body[i : i + CHUNK]


def gated(key: str) -> Iterator[bytes]:
    """Two chunks; the second only once the test created ``release-<key>`` (10 s at most)."""
    yield b"first chunk\n"
    release = TEST_DIR / f"release-{key}"
    deadline = time.monotonic() + 10
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    yield b"second chunk\n"


def detections_body(runtime: Runtime) -> bytes:
    return json.dumps(
        {"detections": detections_json(runtime), "decodes": decodes(runtime)}
    ).encode()
