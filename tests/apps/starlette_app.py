"""A Starlette app with static files, streamed and file responses, behind SafeMediaMiddleware."""

from __future__ import annotations

import asyncio
import gzip
import mimetypes
import zlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from safemedia.asgi import SafeMediaMiddleware
from tests.apps.common import IMAGES, decodes, detections_json, engine_runtime

runtime = engine_runtime()
gate = asyncio.Event()


def _encoded(body: bytes, encoding: str) -> bytes:
    if encoding in ("gzip", "br"):  # "br" is a label only: it must never be decoded
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


async def stream(request: Request) -> Response:
    """The named file in 1000-byte chunks (``?type=`` overrides, ``?encoding=`` encodes)."""
    name = request.path_params["name"]
    body = (IMAGES / name).read_bytes()
    encoding = request.query_params.get("encoding", "")
    body = _encoded(body, encoding)
    media_type = request.query_params.get("type", mimetypes.guess_type(name)[0] or "")

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    headers = {"content-encoding": encoding} if encoding else {}
    response = StreamingResponse(chunks(), media_type=media_type or None, headers=headers)
    if not media_type:
        del response.headers["content-type"]
    return response


async def file(request: Request) -> Response:
    return FileResponse(IMAGES / request.path_params["name"])


async def partial(request: Request) -> Response:
    """An app that answers 206 by itself, whatever the request said."""
    body = (IMAGES / request.path_params["name"]).read_bytes()
    return Response(
        body[:100],
        status_code=206,
        media_type="image/jpeg",
        headers={"content-range": f"bytes 0-99/{len(body)}"},
    )


async def gated(request: Request) -> Response:
    """A text stream whose second chunk waits until ``/release`` is called."""
    gate.clear()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk\n"
        await asyncio.wait_for(gate.wait(), 10)
        yield b"second chunk\n"

    return StreamingResponse(chunks(), media_type="text/plain")


async def release(request: Request) -> Response:
    gate.set()
    return PlainTextResponse("released")


async def text(request: Request) -> Response:
    return PlainTextResponse("hello")


async def detections(request: Request) -> Response:
    return JSONResponse(
        {
            "detections": detections_json(runtime),
            "decodes": decodes(runtime),
            "generation": format(runtime.lists_generation, "x"),
        }
    )


app = Starlette(
    routes=[
        Route("/stream/{name}", stream),
        Route("/file/{name}", file),
        Route("/partial/{name}", partial),
        Route("/gated", gated),
        Route("/release", release),
        Route("/text", text),
        Route("/_detections", detections),
        Mount("/static", StaticFiles(directory=IMAGES)),
    ],
    middleware=[Middleware(SafeMediaMiddleware, runtime=runtime)],
)
