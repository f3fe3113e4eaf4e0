"""A minimal stand-in for :class:`safemedia.engine.Engine`, for tests only.

It lets the HTTP layer be tested before the real engine lands on main: exact SHA-256 lists, a
Pillow decode check, a verdict cache and single-flight per digest, and a scan counter. Replaced by
the real Engine in the tests as soon as it exists (see ``tests/conftest.py``).
"""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

from PIL import Image

from safemedia.config import Config
from safemedia.verdict import Match, Reason, Verdict, VerdictKind


class StandInEngine:
    """Exact-digest matching with the Engine's interface (scan, cached_verdict, lists_generation,
    close)."""

    def __init__(
        self, config: Config, *, listed: set[str] | None = None, watch: Path | None = None
    ) -> None:
        self.config = config
        self._listed = set(listed or ())
        self._generation = 1
        self._cache: dict[tuple[str, int], Verdict] = {}
        self._inflight: dict[str, threading.Event] = {}
        self._lock = threading.RLock()
        self._watch = watch
        self._watched: tuple[float, int] | None = None
        self.decodes = 0
        self._reload()

    def _reload(self) -> None:
        """Re-read the watched list (``sha256 <hex> [id]`` lines) when the file changed."""
        if self._watch is None:
            return
        stat = self._watch.stat()
        if (stat.st_mtime, stat.st_size) == self._watched:
            return
        digests = set()
        for line in self._watch.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "sha256":
                digests.add(parts[1].lower())
        with self._lock:
            if self._watched is not None:
                self._generation += 1
            self._watched = (stat.st_mtime, stat.st_size)
            self._listed = digests

    @property
    def lists_generation(self) -> int:
        self._reload()
        return self._generation

    @property
    def lists_generation_in_force(self) -> int:
        return self._generation

    def set_list(self, digests: set[str]) -> None:
        with self._lock:
            self._listed = set(digests)
            self._generation += 1

    def cached_verdict(self, sha256: str) -> Verdict | None:
        with self._lock:
            return self._cache.get((sha256, self._generation))

    def scan(
        self, body: bytes, content_type: str | None = None, *, sha256: str | None = None
    ) -> Verdict:
        digest = sha256 if sha256 is not None else hashlib.sha256(body).hexdigest()
        self._reload()
        while True:
            with self._lock:
                key = (digest, self._generation)
                cached = self._cache.get(key)
                if cached is not None:
                    return cached
                event = self._inflight.get(digest)
                if event is None:
                    event = self._inflight[digest] = threading.Event()
                    break
            event.wait()
        try:
            verdict = self._decide(body, digest)
            with self._lock:
                self._cache[(digest, verdict.lists_generation)] = verdict
            return verdict
        finally:
            with self._lock:
                del self._inflight[digest]
            event.set()

    def _decide(self, body: bytes, digest: str) -> Verdict:
        with self._lock:
            self.decodes += 1
            generation = self._generation
            listed = digest in self._listed
        try:
            with Image.open(io.BytesIO(body)) as image:
                image.load()
        except Exception as exc:
            return Verdict(
                kind=VerdictKind.UNINSPECTABLE,
                sha256=digest,
                reason=Reason.UNDECODABLE,
                detail=str(exc),
                lists_generation=generation,
            )
        if listed:
            match = Match(list_name="test", entry_id=digest[:8], algorithm="sha256", distance=0)
            return Verdict(
                kind=VerdictKind.MATCH, sha256=digest, match=match, lists_generation=generation
            )
        return Verdict(kind=VerdictKind.CLEAN, sha256=digest, lists_generation=generation)

    def close(self) -> None:
        pass
