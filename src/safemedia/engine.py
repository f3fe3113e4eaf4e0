"""The detection engine: bytes in, a :class:`~safemedia.verdict.Verdict` out. No HTTP here.

Usage::

    engine = Engine(Config.from_file("safemedia.toml"), is_allowed=store.is_allowed)
    verdict = engine.scan(body)          # never raises; thread-safe
    if verdict.is_match: ...

A scan: SHA-256 of the body (the cache key) -> verdict cache (valid only for the lists generation
it was made against) -> single flight per digest -> exact lists (MD5/SHA-1/SHA-256 of the raw
bytes) -> safe decode -> per frame, the configured perceptual hashes (PDQ with its 8 dihedral
variants) -> Hamming search with each list's distance -> allow-lists.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache

from safemedia import hashing, imaging
from safemedia.config import Config, ConfigError, ListConfig
from safemedia.hashlists import Found, ListManager, ListSet
from safemedia.signals import EXACT, SIGNALS
from safemedia.verdict import Match, Reason, Verdict, VerdictKind

__all__ = ["ALLOW_RADIUS_DIVISOR", "Engine", "decode_for"]

logger = logging.getLogger("safemedia")

ALLOW_RADIUS_DIVISOR = 4
"""A perceptual allow-list entry suppresses a match when the image's hash is within a quarter of
the algorithm's default distance of it (PDQ 7, pHash 1, dHash 1 bits) *and* closer to it than to
the listed entry. A listed image then stays detectable: it is near the listed hash, so (by the
triangle inequality) it is far from an allow-listed false positive that sits at the edge of it."""


@dataclass(slots=True)
class _Flight:
    """One scan in progress; others asking for the same digest wait on it."""

    generation: int
    done: threading.Event = field(default_factory=threading.Event)
    verdict: Verdict | None = None


@dataclass(slots=True)
class _Counters:
    scans: int = 0
    cache_hits: int = 0
    coalesced: int = 0
    matches: int = 0
    clean: int = 0
    uninspectable: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class _Query:
    algorithm: str
    frame: int
    value: bytes


class Engine:
    """Scans bodies against the configured hash lists. Thread-safe; one per process is enough.

    Raises :class:`~safemedia.hashlists.ListError` if a list is malformed at construction and
    :class:`~safemedia.config.ConfigError` for an unknown algorithm in ``config.algorithms``.
    ``is_allowed(sha256_hex)`` is the store's allow-list of reviewed false positives: such bodies
    are never a match.
    """

    def __init__(self, config: Config, *, is_allowed: Callable[[str], bool] | None = None) -> None:
        unknown = [a for a in config.algorithms if a not in SIGNALS or not SIGNALS[a].perceptual]
        if unknown:
            raise ConfigError(
                f"bad value for 'algorithms': {', '.join(unknown)} (perceptual signals: "
                f"{', '.join(n for n, s in SIGNALS.items() if s.perceptual)})"
            )
        self._config = config
        self._is_allowed = is_allowed
        self._lists = ListManager(config)
        self._lock = threading.Lock()
        self._cache: LRUCache[str, Verdict] | None = (
            LRUCache(maxsize=config.cache_size) if config.cache_size > 0 else None
        )
        self._inflight: dict[str, _Flight] = {}
        self._counters = _Counters()

    @property
    def lists_generation(self) -> int:
        """Identifies the lists in force; changes whenever they change (same in every worker).

        When a reload check is due it runs first (a ``stat`` of each file; a changed file is
        parsed and indexed before this returns), so a request planned after another worker saw
        the change is planned against the new lists too.
        """
        return self._lists.current().generation

    @property
    def lists_generation_in_force(self) -> int:
        """:attr:`lists_generation` without a reload check: no file I/O, safe on an event loop."""
        return self._lists.in_force.generation

    @property
    def lists(self) -> ListSet:
        """The lists in force (after a reload check)."""
        return self._lists.current()

    def refresh_lists(self) -> bool:
        """Check the list files now; True when changed lists were swapped in."""
        return self._lists.refresh()

    def stats(self) -> dict[str, Any]:
        """Counters since start: scans, cache hits, matches, uninspectable, seconds spent..."""
        with self._lock:
            c = self._counters
            out: dict[str, Any] = {
                "scans": c.scans,
                "cache_hits": c.cache_hits,
                "coalesced": c.coalesced,
                "matches": c.matches,
                "clean": c.clean,
                "uninspectable": c.uninspectable,
                "errors": c.errors,
                "seconds": c.seconds,
                "cached_verdicts": len(self._cache) if self._cache is not None else 0,
            }
        lists = self._lists.current()
        out["lists_generation"] = lists.generation
        out["entries"] = lists.counts()
        out["list_errors"] = list(self._lists.last_errors)
        return out

    def close(self) -> None:
        """Drop cached verdicts. The engine holds no threads or files; scanning still works."""
        with self._lock:
            if self._cache is not None:
                self._cache.clear()

    def scan(
        self, body: bytes, content_type: str | None = None, *, sha256: str | None = None
    ) -> Verdict:
        """The verdict for ``body``. Never raises; unexpected failures are uninspectable.

        ``sha256``: the hex SHA-256 of exactly ``body`` when the caller already has it (it is
        the cache key, so it must be that digest); otherwise it is computed here.
        """
        started = time.perf_counter()
        sha = ""
        kind = "computed"
        try:
            sha = sha256 if sha256 is not None else hashlib.sha256(body).hexdigest()
            verdict, kind = self._scan(body, sha)
        except Exception as exc:  # the boundary: nothing may reach the host app
            logger.exception("safemedia: scan failed")
            kind = "error"
            verdict = Verdict(
                kind=VerdictKind.UNINSPECTABLE,
                sha256=sha,
                reason=Reason.UNDECODABLE,
                detail=f"internal error while scanning: {type(exc).__name__}",
            )
        elapsed = time.perf_counter() - started
        with self._lock:
            self._count(verdict, kind, elapsed)
        return verdict

    def _count(self, verdict: Verdict, kind: str, elapsed: float = 0.0) -> None:
        """Add one scan to the counters (hold ``self._lock``)."""
        c = self._counters
        c.scans += 1
        c.seconds += elapsed
        c.cache_hits += kind == "hit"
        c.coalesced += kind == "coalesced"
        c.errors += kind == "error"
        if verdict.kind is VerdictKind.MATCH:
            c.matches += 1
        elif verdict.kind is VerdictKind.CLEAN:
            c.clean += 1
        else:
            c.uninspectable += 1

    def cached_verdict(self, sha256: str) -> Verdict | None:
        """The cached verdict for a body with this SHA-256 (hex), if it was made against the
        lists in force; else None. No reload check and no scan: safe on an event loop.

        A hit is counted as a scan answered from the cache. The store's allow-list is not
        asked: it only ever turns a verdict into clean, so callers use a clean answer only.
        """
        if self._cache is None:
            return None
        generation = self._lists.in_force.generation
        with self._lock:
            cached = self._cache.get(sha256)
            if cached is None or cached.lists_generation != generation:
                return None
            self._count(cached, "hit")
        return cached

    def _scan(self, body: bytes, sha: str) -> tuple[Verdict, str]:
        lists = self._lists.current()
        generation = lists.generation
        if self._store_allows(sha):
            return _clean(sha, generation, "allow-listed by the operator (sha256)"), "computed"
        with self._lock:
            cached = self._cache.get(sha) if self._cache is not None else None
            if cached is not None and cached.lists_generation == generation:
                return cached, "hit"
            flight = self._inflight.get(sha)
            leader = flight is None or flight.generation != generation
            if leader:
                flight = _Flight(generation)
                self._inflight[sha] = flight
        assert flight is not None
        if not leader:
            flight.done.wait()
            if flight.verdict is not None:
                return flight.verdict, "coalesced"
            return self._compute(body, sha, lists), "computed"
        verdict: Verdict | None = None
        try:
            verdict = self._compute(body, sha, lists)
            return verdict, "computed"
        finally:
            with self._lock:
                if verdict is not None and self._cache is not None:
                    self._cache[sha] = verdict
                if self._inflight.get(sha) is flight:
                    del self._inflight[sha]
            flight.verdict = verdict
            flight.done.set()

    def _store_allows(self, sha: str) -> bool:
        if self._is_allowed is None:
            return False
        try:
            return bool(self._is_allowed(sha))
        except Exception:  # a failing store must not turn into a pass or a crash
            logger.exception("safemedia: allow-list lookup failed; treating as not allowed")
            return False

    def _compute(self, body: bytes, sha: str, lists: ListSet) -> Verdict:
        digests = {"sha256": bytes.fromhex(sha)}
        wanted = lists.algorithms | lists.allow_algorithms
        for name in ("md5", "sha1"):
            if name in wanted:
                digests[name] = hashing.hash_bytes(name, body)
        hashes = {name: value.hex() for name, value in digests.items()}
        verdict = self._judge(body, sha, lists, digests, hashes)
        if not verdict.is_clean and "md5" not in hashes:
            # reports name the MD5 (NCMEC and others ask for it); clean verdicts skip the cost
            hashes["md5"] = hashing.hash_bytes("md5", body).hex()
        return verdict

    def _judge(
        self,
        body: bytes,
        sha: str,
        lists: ListSet,
        digests: dict[str, bytes],
        hashes: dict[str, str],
    ) -> Verdict:
        generation = lists.generation
        for name, value in digests.items():
            if lists.allowed(name, value) is not None:
                return _clean(sha, generation, f"allow-listed ({name})", hashes)
        exact = [f for name in EXACT if name in digests for f in _exact(lists, name, digests)]
        if exact:
            return _match(sha, generation, exact[0], None, hashes)
        try:
            image = decode_for(self._config, body)
        except imaging.DecodeError as exc:
            return Verdict(
                kind=VerdictKind.UNINSPECTABLE,
                sha256=sha,
                reason=exc.reason,
                detail=exc.detail,
                hashes=hashes,
                lists_generation=generation,
            )
        queries, notes = self._hash_frames(image.frames, lists, hashes)
        best = self._best(lists, queries)
        if best is not None:
            found, query = best
            return _match(sha, generation, found, query, hashes)
        detail = "; ".join(notes) if notes else "no list entry within distance"
        return _clean(sha, generation, detail, hashes)

    def _hash_frames(
        self, frames: Sequence[Any], lists: ListSet, hashes: dict[str, str]
    ) -> tuple[list[_Query], list[str]]:
        config = self._config
        queries: list[_Query] = []
        notes: list[str] = []
        for number, frame in enumerate(frames):
            if number and frame is frames[number - 1]:
                continue  # a GIF frame that repeats the one before: its hashes are those
            for algorithm in config.algorithms:
                listed = algorithm in lists.algorithms
                variants: Sequence[bytes]
                if algorithm == "pdq" and config.dihedral and listed:
                    value, variants = hashing.pdq_with_dihedral(frame)
                else:
                    value = hashing.hash_image(algorithm, frame)
                    variants = (value.value,)
                if number == 0:
                    hashes[algorithm] = value.value.hex()
                if value.quality is not None and value.quality < config.pdq_quality_min:
                    notes.append(
                        f"frame {number}: {algorithm} quality {value.quality} below "
                        f"{config.pdq_quality_min}, no perceptual verdict"
                    )
                    continue
                if listed:
                    queries.extend(_Query(algorithm, number, v) for v in variants)
        return queries, notes

    def _best(self, lists: ListSet, queries: list[_Query]) -> tuple[Found, _Query] | None:
        for algorithm in dict.fromkeys(q.algorithm for q in queries):
            mine = [q for q in queries if q.algorithm == algorithm]
            spec = SIGNALS[algorithm]
            radius = spec.default_distance // ALLOW_RADIUS_DIVISOR

            def distance_for(c: ListConfig, name: str = algorithm) -> int:
                if c.distance is not None:
                    return c.distance
                return self._config.distance_for(name, SIGNALS[name].default_distance)

            # The nearest entry per query is enough: a query whose nearest entry is suppressed by
            # the allow-list (allowed distance < its distance) has every other entry suppressed.
            values = [q.value for q in mine]
            found = lists.lookup(algorithm, values, distance_for, best_only=True)
            for f in sorted(found, key=lambda f: (f.distance, mine[f.query].frame)):
                query = mine[f.query]
                allowed = lists.allowed(algorithm, query.value, radius)
                if allowed is not None and allowed < f.distance:
                    continue
                return f, query  # the first algorithm (in config order) with a match
        return None


def decode_for(config: Config, body: bytes) -> imaging.DecodedImage:
    """:func:`safemedia.imaging.decode` with the caps and resolution ``config`` sets."""
    return imaging.decode(
        body,
        max_pixels=config.max_pixels,
        max_frames=config.max_frames,
        full_resolution=config.full_resolution,
        max_total_pixels=config.max_total_frame_pixels,
    )


def _exact(lists: ListSet, algorithm: str, digests: dict[str, bytes]) -> list[Found]:
    if algorithm not in lists.algorithms:
        return []
    return lists.lookup(algorithm, [digests[algorithm]], lambda _c: 0)


def _clean(sha: str, generation: int, detail: str, hashes: dict[str, str] | None = None) -> Verdict:
    return Verdict(
        kind=VerdictKind.CLEAN,
        sha256=sha,
        detail=detail,
        hashes=hashes or {"sha256": sha},
        lists_generation=generation,
    )


def _match(
    sha: str, generation: int, found: Found, query: _Query | None, hashes: dict[str, str]
) -> Verdict:
    frame = query.frame if query is not None else 0
    match = Match(
        list_name=found.list_name,
        entry_id=found.entry_id,
        algorithm=found.algorithm,
        distance=found.distance,
        frame=frame,
        query_hash=query.value.hex() if query is not None else hashes.get(found.algorithm, ""),
        list_hash=found.list_hash.hex(),
    )
    where = f" (frame {frame})" if query is not None else ""
    entry = f" entry {found.entry_id!r}" if found.entry_id else ""
    return Verdict(
        kind=VerdictKind.MATCH,
        sha256=sha,
        match=match,
        detail=f"{found.algorithm} distance {found.distance} to list {found.list_name!r}"
        f"{entry}{where}",
        hashes=hashes,
        lists_generation=generation,
    )
