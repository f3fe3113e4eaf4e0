"""What both adversarial apps serve, framework-free: bodies, their headers, the stats document.

The apps read ``SAFEMEDIA_CONFIG`` (a ``safemedia.toml`` written by ``tests.adversarial.site``)
and serve ``static/`` from the folder ``ADVERSARIAL_SITE`` names. ``/_stats`` is this test
app's own opt-in window on the engine's counters (``Engine.stats()``) and the worker's pid.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path
from typing import Any

from safemedia.runtime import Runtime
from tests.adversarial.hostile import zeros_deflated

SITE = Path(os.environ.get("ADVERSARIAL_SITE", "."))
STATIC = SITE / "static"
BOMB_BYTES = 1 << 30  # what the gzip bomb inflates to

# /typed/<kind>/<name>: the file's bytes under a chosen label (None: no Content-Type at all).
LABELS: dict[str, str | None] = {
    "text-plain": "text/plain",
    "octet-stream": "application/octet-stream",
    "image-jpeg": "image/jpeg",
    "text-html": "text/html",
    "none": None,
}


def image(name: str) -> bytes:
    """A file of ``static/`` (names are plain file names: no path separators)."""
    return (STATIC / Path(name).name).read_bytes()


def typed(kind: str, name: str) -> tuple[bytes, str | None]:
    """``name``'s bytes and the label ``kind`` chooses; KeyError for an unknown kind."""
    return image(name), LABELS[kind]


def gzipped(times: int, name: str) -> tuple[bytes, str]:
    """``name`` gzipped ``times`` times, with the matching ``Content-Encoding`` value."""
    body = image(name)
    for _ in range(times):
        body = gzip.compress(body, mtime=0)
    return body, ", ".join(["gzip"] * times)


@functools.cache
def bomb() -> bytes:
    """A ~1 MB gzip stream of 1 GiB of zeros (sent as an image/png with ``gzip`` encoding)."""
    return zeros_deflated(BOMB_BYTES, wbits=31)


def page(number: int) -> str:
    """An HTML page with a few image tags (pages are never scanned: they pass through)."""
    tags = "".join(f'<img src="/static/clean-{(number + k) % 50:02d}.jpg">' for k in range(3))
    return f"<!doctype html><title>page {number}</title><h1>Page {number}</h1>{tags}\n" * 20


def stats(runtime: Runtime) -> dict[str, Any]:
    """This worker's pid, RSS and engine counters."""
    engine_stats = getattr(runtime.engine, "stats", None)
    return {
        "pid": os.getpid(),
        "rss_kib": _rss_kib(),
        "engine": engine_stats() if callable(engine_stats) else {},
    }


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
