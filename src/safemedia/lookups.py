"""Answers from the store kept in memory, so a request does not query SQLite.

:class:`CachedAnswers` reuses each yes/no answer for a few seconds. :class:`StoreSet` holds a
whole table of the store (the blocked URLs, the allow-list) and re-reads it only when the store
says it changed, so checking a URL never seen before costs a set lookup, not a query (and no file
I/O on an event loop).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger("safemedia")

CACHE_SIZE = 100_000
"""Most answers :class:`CachedAnswers` keeps (then it starts afresh), and most URLs
:class:`StoreSet` holds in memory (beyond that it asks the store per key)."""


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
class SetSource(Protocol):
    """A recorder that can hand over whole tables of keys (the store)."""

    def change_count(self, table: Any) -> int: ...

    def key_set(self, table: Any, limit: int) -> tuple[int, frozenset[str] | None]: ...


class StoreSet:
    """Whether a key (a blocked URL, an allow-listed sha256) is in one of the store's tables,
    answered from an in-memory copy.

    At most every ``ttl`` seconds (always, with 0) the table's change count is read (one small
    query); when it moved, the keys are read again. A change this process makes is seen at once
    (:meth:`forget`); other processes' changes and operators' commands within ``ttl``. With more
    than :data:`CACHE_SIZE` keys, or when the store fails, it falls back to ``ask`` per key
    (answers reused for ``ttl``; an error answers no, so a response is still scanned).
    """

    def __init__(
        self, source: SetSource, table: str, ask: Callable[[str], bool], ttl: float
    ) -> None:
        self._source = source
        self._table = table
        self._ttl = ttl
        self._per_key = CachedAnswers(ask, ttl, f"reading {table}", default=False)
        # (change count, keys or None to ask per key, when to check the count again)
        self._state: tuple[int, frozenset[str] | None, float] = (-1, None, 0.0)

    def __call__(self, key: str) -> bool:
        version, keys, check_at = self._state
        if time.monotonic() >= check_at:
            version, keys = self._refresh(version, keys)
        if keys is None:
            return self._per_key(key)
        return key in keys

    def _refresh(
        self, version: int, keys: frozenset[str] | None
    ) -> tuple[int, frozenset[str] | None]:
        try:
            current = self._source.change_count(self._table)
            if current != version:
                current, keys = self._source.key_set(self._table, CACHE_SIZE)
        except Exception:
            logger.exception("safemedia: could not read %s; asking per key", self._table)
            current, keys = -1, None
        self._state = (current, keys, time.monotonic() + self._ttl)
        return current, keys

    def forget(self, key: str) -> None:
        """``key``'s answer may have changed (this process changed it): check at the next call."""
        version, keys, _ = self._state
        self._state = (version, keys, 0.0)
        self._per_key.forget(key)


def store_set(
    recorder: object, table: str, ask: Callable[[str], bool], ttl: float
) -> StoreSet | CachedAnswers:
    """:class:`StoreSet` when ``recorder`` can hand over ``table`` (the store), else per key."""
    if isinstance(recorder, SetSource):
        return StoreSet(recorder, table, ask, ttl)
    return CachedAnswers(ask, ttl, f"reading {table}", default=False)
