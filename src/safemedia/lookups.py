"""Answers from the store kept in memory, so a request does not query SQLite.

:class:`CachedAnswers` reuses each yes/no answer for a few seconds. :class:`BlockedUrls` holds
the store's whole set of blocked URLs and re-reads it only when the store says it changed, so
checking a URL that was never seen before costs a set lookup, not a query (and no file I/O on an
event loop).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from safemedia.events import DetectionRecorder

logger = logging.getLogger("safemedia")

CACHE_SIZE = 100_000
"""Most answers :class:`CachedAnswers` keeps (then it starts afresh), and most URLs
:class:`BlockedUrls` holds in memory (beyond that it asks the store per URL)."""


class CachedAnswers:
    """Yes/no answers of a slower source (the store), reused for ``ttl`` seconds.

    Reads take no lock (a dict read is atomic); errors are logged and answer ``default``.
    """

    def __init__(self, ask: Callable[[str], bool], ttl: float, what: str, default: bool) -> None:
        self._ask = ask
        self._ttl = ttl
        self._what = what
        self._default = default
        self._answers: dict[str, tuple[bool, float]] = {}

    def __call__(self, key: str) -> bool:
        now = time.monotonic()
        cached = self._answers.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            answer = self._ask(key)
        except Exception:
            logger.exception("safemedia: %s failed; answering %s", self._what, self._default)
            return self._default
        if self._ttl > 0:
            if len(self._answers) >= CACHE_SIZE:
                self._answers.clear()
            self._answers[key] = (answer, now + self._ttl)
        return answer

    def forget(self, key: str) -> None:
        self._answers.pop(key, None)


@runtime_checkable
class BlockedUrlSource(Protocol):
    """A recorder that can hand over all its blocked URLs (the store)."""

    def is_blocked(self, url: str) -> bool: ...

    def blocked_urls_version(self) -> int: ...

    def blocked_url_set(self, limit: int) -> tuple[int, frozenset[str] | None]: ...


class BlockedUrls:
    """Whether a URL is blocked, answered from an in-memory copy of the store's set.

    At most every ``ttl`` seconds (always, with 0) the store's change count for blocked URLs is
    read (one small query); when it moved, the set is read again. A block this process records
    is seen at once (:meth:`forget`); other processes' blocks and operators' unblocks within
    ``ttl``. With more than :data:`CACHE_SIZE` blocked URLs, or when the store fails, it falls
    back to asking the store per URL (answers reused for ``ttl``; an error answers "not blocked",
    and the response is still scanned).
    """

    def __init__(self, source: BlockedUrlSource, ttl: float) -> None:
        self._source = source
        self._ttl = ttl
        self._per_url = CachedAnswers(source.is_blocked, ttl, "is_blocked", default=False)
        # (change count, URLs or None to ask per URL, when to check the count again)
        self._state: tuple[int, frozenset[str] | None, float] = (-1, None, 0.0)

    def __call__(self, url: str) -> bool:
        version, urls, check_at = self._state
        if time.monotonic() >= check_at:
            version, urls = self._refresh(version, urls)
        if urls is None:
            return self._per_url(url)
        return url in urls

    def _refresh(
        self, version: int, urls: frozenset[str] | None
    ) -> tuple[int, frozenset[str] | None]:
        try:
            current = self._source.blocked_urls_version()
            if current != version:
                current, urls = self._source.blocked_url_set(CACHE_SIZE)
        except Exception:
            logger.exception("safemedia: could not read the blocked URLs; asking per URL")
            current, urls = -1, None
        self._state = (current, urls, time.monotonic() + self._ttl)
        return current, urls

    def forget(self, url: str) -> None:
        """``url``'s answer may have changed (this process blocked it): check at the next call."""
        version, urls, _ = self._state
        self._state = (version, urls, 0.0)
        self._per_url.forget(url)


def blocked_urls(recorder: DetectionRecorder, ttl: float) -> BlockedUrls | CachedAnswers:
    """:class:`BlockedUrls` when ``recorder`` can give its set (the store), else per URL."""
    if isinstance(recorder, BlockedUrlSource):
        return BlockedUrls(recorder, ttl)
    return CachedAnswers(recorder.is_blocked, ttl, "is_blocked", default=False)
