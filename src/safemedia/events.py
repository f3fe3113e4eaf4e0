"""Detection events and the interface that records them.

The HTTP policy produces a :class:`Detection` for every block and every uninspectable response;
a :class:`DetectionRecorder` makes it durable (the store) before the block response is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from safemedia.verdict import Verdict

logger = logging.getLogger("safemedia")


class Action(StrEnum):
    """What safemedia did with the response."""

    BLOCKED = "blocked"
    ALLOWED = "allowed"
    FOUND = "found"
    """Found by ``safemedia scan`` in a folder: recorded, nothing was served through safemedia."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Detection:
    """One detection: where it was served, what matched (or why uninspectable), what was done.

    Never holds the image bytes; ``md5`` and ``verdict.sha256`` are what a report asks for.
    """

    verdict: Verdict
    action: Action
    method: str
    host: str
    path: str
    query: str = ""
    md5: str = ""
    client: str | None = None
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def blocks_url(self) -> bool:
        """Whether the URL stays blocked: only a match does. An uninspectable response is
        refused (fail closed) and recorded, but a later response at its URL is checked again."""
        return self.action is Action.BLOCKED and self.verdict.is_match

    @property
    def url(self) -> str:
        """The request target as the blocked-URL key (:func:`url_key`)."""
        return url_key(self.host, self.path, self.query)


def url_key(host: str, path: str, query: str = "") -> str:
    """The blocked-URL key of a request: ``host + path [+ ?query]``, host lowercased.

    A ``/`` in the host (only a bogus ``Host`` header has one) is written ``%2F``, so the key's
    first ``/`` always starts the path (:func:`url_paths`).
    """
    host = host.lower()
    if "/" in host:
        host = host.replace("/", "%2F")
    return f"{host}{path}?{query}" if query else host + path


def url_paths(url: str) -> tuple[str, ...]:
    """Every request path starting with ``/`` whose :func:`url_key` (with some host and query)
    can be ``url``: what follows the host, up to any ``?`` (a decoded path may hold one too).
    """
    start = url.find("/")
    if start < 0:
        return ()
    paths = [url[start:]]
    end = url.find("?", start)
    while end >= 0:
        paths.append(url[start:end])
        end = url.find("?", end + 1)
    return tuple(paths)


class DetectionRecorder(Protocol):
    """Durable sink for detections and the set of blocked URLs."""

    def record(self, detection: Detection) -> None:
        """Persist ``detection`` (and block its URL when it blocks it) before returning."""

    def is_blocked(self, url: str) -> bool:
        """Whether ``url`` (as :attr:`Detection.url`) is blocked."""


class LoggingRecorder:
    """A non-durable recorder that logs detections and keeps blocks in memory."""

    def __init__(self) -> None:
        self._blocked: set[str] = set()

    def record(self, detection: Detection) -> None:
        v = detection.verdict
        logger.warning(
            "safemedia detection: %s %s %s verdict=%s reason=%s sha256=%s",
            detection.action,
            detection.method,
            detection.url,
            v.kind,
            v.reason,
            v.sha256,
        )
        if detection.blocks_url:
            self._blocked.add(detection.url)

    def is_blocked(self, url: str) -> bool:
        return url in self._blocked
