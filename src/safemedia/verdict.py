"""The result of scanning one body: clean, a match, or uninspectable with a reason.

These types are the contract between the engine (which makes verdicts), the HTTP policy (which acts
on them) and the store (which records them). They know nothing of HTTP or storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class VerdictKind(StrEnum):
    """What the engine concluded about a body."""

    CLEAN = "clean"
    MATCH = "match"
    UNINSPECTABLE = "uninspectable"


class Reason(StrEnum):
    """Why a body could not be inspected. Each reason is blocked by default (fail closed)."""

    UNDECODABLE = "undecodable"
    TRUNCATED = "truncated"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_MANY_FRAMES = "too_many_frames"
    TOO_LARGE = "too_large"
    PARTIAL_CONTENT = "partial_content"
    UNKNOWN_ENCODING = "unknown_encoding"


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """One hash-list entry that a body (or one of its frames) matched."""

    list_name: str
    entry_id: str
    algorithm: str
    distance: int
    frame: int = 0
    query_hash: str = ""
    list_hash: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The engine's answer for one body, keyed by the body's SHA-256.

    ``hashes`` holds the body's own signals (e.g. ``{"pdq": ..., "md5": ...}``) for reports;
    ``lists_generation`` identifies the hash lists in force when the verdict was made.
    """

    kind: VerdictKind
    sha256: str
    match: Match | None = None
    reason: Reason | None = None
    detail: str = ""
    hashes: Mapping[str, str] = field(default_factory=dict)
    lists_generation: int = 0

    @property
    def is_clean(self) -> bool:
        return self.kind is VerdictKind.CLEAN

    @property
    def is_match(self) -> bool:
        return self.kind is VerdictKind.MATCH

    @property
    def is_uninspectable(self) -> bool:
        return self.kind is VerdictKind.UNINSPECTABLE
