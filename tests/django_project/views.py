"""Views of the test site. With ``SMTEST_ASYNC=1`` (the ASGI run) streams are async iterators."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse

from safemedia.contrib.django import get_runtime
from tests.apps import wsgi_routes as routes
from tests.apps.common import IMAGES, TEST_DIR

ASYNC = os.environ.get("SMTEST_ASYNC") == "1"


def _streaming(parts: Iterable[bytes]) -> Iterable[bytes] | AsyncIterator[bytes]:
    if not ASYNC:
        return parts

    async def agen() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    return agen()


def file(request: HttpRequest, name: str) -> FileResponse:
    return FileResponse((IMAGES / name).open("rb"))


def stream(request: HttpRequest, name: str) -> StreamingHttpResponse:
    encoding = request.GET.get("encoding", "")
    body = routes.encoded(routes.image(name), encoding)
    response = StreamingHttpResponse(_streaming(routes.chunks(body)))
    kind = routes.media_type(name, request.GET.get("type"))
    if kind:
        response["Content-Type"] = kind
    else:
        del response["Content-Type"]
    if encoding:
        response["Content-Encoding"] = encoding
    return response


def partial(request: HttpRequest, name: str) -> HttpResponse:
    body = routes.image(name)
    response = HttpResponse(body[:100], status=206, content_type="image/jpeg")
    response["Content-Range"] = f"bytes 0-99/{len(body)}"
    return response


def gated(request: HttpRequest) -> StreamingHttpResponse:
    key = request.GET["key"]
    if not ASYNC:
        return StreamingHttpResponse(routes.gated(key), content_type="text/plain")

    async def agated() -> AsyncIterator[bytes]:
        yield b"first chunk\n"
        for _ in range(1000):
            if (TEST_DIR / f"release-{key}").exists():
                break
            await asyncio.sleep(0.01)
        yield b"second chunk\n"

    return StreamingHttpResponse(agated(), content_type="text/plain")


def text(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello", content_type="text/plain")


def detections(request: HttpRequest) -> HttpResponse:
    return HttpResponse(routes.detections_body(get_runtime()), content_type="application/json")
