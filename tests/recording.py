"""A recorder for tests that keeps detections in memory, in order (the real store is SQLite)."""

from __future__ import annotations

import threading

from safemedia.events import Action, Detection


class MemoryRecorder:
    """Implements :class:`safemedia.events.DetectionRecorder`; blocks URLs of matches."""

    def __init__(self) -> None:
        self.detections: list[Detection] = []
        self.blocked: set[str] = set()
        self._lock = threading.Lock()

    def record(self, detection: Detection) -> None:
        with self._lock:
            self.detections.append(detection)
            if detection.action is Action.BLOCKED and detection.verdict.is_match:
                self.blocked.add(detection.url)

    def is_blocked(self, url: str) -> bool:
        return url in self.blocked

    def unblock(self, url: str) -> None:
        with self._lock:
            self.blocked.discard(url)
