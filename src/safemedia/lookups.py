"""Answers from the store kept in memory, so a request does not query SQLite.

:class:`CachedAnswers` reuses each yes/no answer for a few seconds. :class:`StoreSet` holds a
whole table of the store (the blocked URLs, the allow-list) and re-reads it only when the store
says it changed, so checking a URL never seen before costs a set lookup, not a query (and no file
I/O on an event loop).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol, runtime_checkable

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

    state: SetState
    """As :attr:`StoreSet.state`: no index, never due (set below the class)."""

    def refresh(self) -> SetState:
        """As :meth:`StoreSet.refresh`: nothing to read."""
        return self.state

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

    def might_contain(self, term: str) -> bool:
        """Always True: answers are per key, there is no index to rule a key out."""
        return True


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

    ``index``: the terms each key is filed under (a blocked URL's paths), so that
    :meth:`might_contain` can rule out every key with a term before the key is even built.
    """

    def __init__(
        self,
        source: SetSource,
        table: str,
        ask: Callable[[str], bool],
        ttl: float,
        *,
        index: Callable[[str], Iterable[str]] | None = None,
    ) -> None:
        self._source = source
        self._table = table
        self._ttl = ttl
        self._index = index
        self._per_key = CachedAnswers(ask, ttl, f"reading {table}", default=False)
        self.state = SetState(-1, None, None, 0.0)
        """What is known of the table now (replaced whole): a reader that finds it due
        (``time.monotonic() >= state.check_at``) calls :meth:`refresh` and reads its result."""

    def __call__(self, key: str) -> bool:
        state = self.state
        if time.monotonic() >= state.check_at:
            state = self.refresh()
        if state.keys is None:
            return self._per_key(key)
        return key in state.keys

    def might_contain(self, term: str) -> bool:
        """False when no key in the table is filed under ``term`` (by ``index``); True when
        one is, or when that cannot be told (no index, asking per key)."""
        state = self.state
        if time.monotonic() >= state[3]:  # check_at; by index: a field name costs more a call
            state = self.refresh()
        terms = state[2]
        return terms is None or term in terms

    def refresh(self) -> SetState:
        """Read the table's change count now (and its keys if it moved); the new state."""
        state = self.state
        version, keys, terms = state.version, state.keys, state.terms
        try:
            current = self._source.change_count(self._table)
            if current != version:
                current, keys = self._source.key_set(self._table, CACHE_SIZE)
                terms = None
                if keys is not None and self._index is not None:
                    terms = frozenset(t for key in keys for t in self._index(key))
        except Exception:
            logger.exception("safemedia: could not read %s; asking per key", self._table)
            current, keys, terms = -1, None, None
        self.state = state = SetState(current, keys, terms, time.monotonic() + self._ttl)
        return state

    def forget(self, key: str) -> None:
        """``key``'s answer may have changed (this process changed it): check at the next call."""
        state = self.state
        self.state = SetState(state.version, state.keys, state.terms, 0.0)
        self._per_key.forget(key)


class SetState(NamedTuple):
    """What :class:`StoreSet` holds, replaced whole (so a reader never sees half of it)."""

    version: int  # the table's change count when read
    keys: frozenset[str] | None  # None: ask per key
    terms: frozenset[str] | None  # the keys' index terms; None: no index, or asking per key
    check_at: float  # when to read the change count again


CachedAnswers.state = SetState(-1, None, None, float("inf"))


def store_set(
    recorder: object,
    table: str,
    ask: Callable[[str], bool],
    ttl: float,
    *,
    index: Callable[[str], Iterable[str]] | None = None,
) -> StoreSet | CachedAnswers:
    """:class:`StoreSet` when ``recorder`` can hand over ``table`` (the store), else per key."""
    if isinstance(recorder, SetSource):
        return StoreSet(recorder, table, ask, ttl, index=index)
    return CachedAnswers(ask, ttl, f"reading {table}", default=False)
