"""The apps bench_middleware.py measures: one Starlette app, bare and behind SafeMediaMiddleware.

Synthetic images only (noisy gradients drawn with numpy); the hash list holds random PDQ hashes
and the hash of one synthetic image that the benchmark never serves.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from bench import forum_page
from safemedia import Config
from safemedia.asgi import SafeMediaMiddleware
from safemedia.config import ListConfig
from safemedia.hashing import hash_image

LARGE_COUNT = 16
PART_BYTES = 64 * 1024
"""Part size of the ``/parts`` and ``/large-parts/{i}`` responses: Starlette's FileResponse's."""


def _photo(seed: int, width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    f = 3 + seed % 5
    channels = [
        128 + 100 * np.sin(f * 6.28 * x + seed) * np.cos(f * 3.14 * y),
        128 + 100 * np.cos((f + 1) * 6.28 * y + seed * 0.5) * np.ones_like(x),
        255 * (x * y),
    ]
    array = np.stack(channels, axis=-1)
    array += rng.normal(0, 6, size=(height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


def _jpeg(image: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def make_assets(root: Path) -> None:
    """``photo.jpg``, ``large-*.jpg`` (12 MP), ``small.jpg``, ``fresh.jpg``, ``list.txt``."""
    (root / "photo.jpg").write_bytes(_jpeg(_photo(1, 4000, 3000)))
    (root / "small.jpg").write_bytes(_jpeg(_photo(3, 800, 600)))
    (root / "fresh.jpg").write_bytes(_jpeg(_photo(2, 1600, 1200)))
    for i in range(LARGE_COUNT):
        (root / f"large-{i}.jpg").write_bytes(_jpeg(_photo(100 + i, 4000, 3000)))
    listed = hash_image("pdq", _photo(999, 640, 480)).value.hex()
    rng = np.random.default_rng(7)
    lines = [f"pdq {listed} listed-synthetic"]
    lines += [f"pdq {rng.bytes(32).hex()} random-{i}" for i in range(10_000)]
    (root / "list.txt").write_text("\n".join(lines) + "\n")


def bare_app(root: Path) -> Starlette:
    """The app without safemedia: a text endpoint, a thread page and in-memory JPEGs."""
    photo = (root / "photo.jpg").read_bytes()
    small = (root / "small.jpg").read_bytes()
    fresh = (root / "fresh.jpg").read_bytes()
    large = [(root / f"large-{i}.jpg").read_bytes() for i in range(LARGE_COUNT)]

    async def text(request: Request) -> Response:
        return PlainTextResponse("hello")

    async def thread_page(request: Request) -> Response:
        return HTMLResponse(forum_page.render(int(request.query_params.get("p", 1))))

    async def one_photo(request: Request) -> Response:
        return Response(photo, media_type="image/jpeg")

    async def small_photo(request: Request) -> Response:
        return Response(small, media_type="image/jpeg")

    async def fresh_photo(request: Request) -> Response:
        return Response(fresh, media_type="image/jpeg")

    async def large_photo(request: Request) -> Response:
        return Response(large[int(request.path_params["i"])], media_type="image/jpeg")

    def in_parts(body: bytes) -> Response:
        """``body`` in 64 KiB ``more_body`` messages, as a FileResponse sends a file (from
        memory here, so that no file reads in threads blur the figures)."""

        async def parts() -> AsyncIterator[bytes]:
            for i in range(0, len(body), PART_BYTES):
                yield body[i : i + PART_BYTES]

        length = {"content-length": str(len(body))}  # as FileResponse: no chunked encoding
        return StreamingResponse(parts(), media_type="image/jpeg", headers=length)

    async def photo_parts(request: Request) -> Response:
        return in_parts(photo)

    async def large_parts(request: Request) -> Response:
        return in_parts(large[int(request.path_params["i"])])

    return Starlette(
        routes=[
            Route("/text", text),
            Route("/page", thread_page),
            Route("/photo", one_photo),
            Route("/small", small_photo),
            Route("/fresh", fresh_photo),
            Route("/large/{i}", large_photo),
            Route("/parts", photo_parts),
            Route("/large-parts/{i}", large_parts),
        ]
    )


def bench_config(root: Path, *, cache: bool) -> Config:
    return Config(
        hash_lists=(ListConfig(path=root / "list.txt"),),
        store="memory:",
        cache_size=10_000 if cache else 0,
    )


def wrapped_app(root: Path, *, cache: bool) -> SafeMediaMiddleware:
    """The same app behind SafeMediaMiddleware (real engine, in-memory store)."""
    return SafeMediaMiddleware(bare_app(root), config=bench_config(root, cache=cache))


def _assets() -> Path:
    return Path(os.environ["SMBENCH_ASSETS"])


def bare_server() -> Starlette:
    return bare_app(_assets())


def wrapped_server() -> SafeMediaMiddleware:
    return wrapped_app(_assets(), cache=True)


class PassThrough:
    """An ASGI middleware that does nothing but pass each message on through its own ``send``:
    the least any response-inspecting middleware costs (the bench's reference)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def forward(message: Message) -> None:
            await send(message)

        await self.app(scope, receive, forward)


def null_server() -> PassThrough:
    return PassThrough(bare_app(_assets()))


def uncached_server() -> SafeMediaMiddleware:
    """Verdict cache off: every image fetch is decoded and hashed."""
    return wrapped_app(_assets(), cache=False)
