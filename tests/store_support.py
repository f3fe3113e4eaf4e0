"""Helpers for the store, notifier and operator tests: configs on tmp files and detections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safemedia.config import Config
from safemedia.events import Action, Detection
from safemedia.verdict import Match, Reason, Verdict, VerdictKind

SHA_A = "a" * 64
SHA_B = "b" * 64


def store_config(tmp_path: Path, **extra: Any) -> Config:
    """A config whose store is a real SQLite file in ``tmp_path``."""
    data: dict[str, Any] = {"store": f"sqlite:///{tmp_path / 'state.db'}"}
    data.update(extra)
    return Config.from_mapping(data)


def match_detection(
    path: str = "/u/1.jpg",
    *,
    sha256: str = SHA_A,
    host: str = "example.org",
    query: str = "",
    action: Action = Action.BLOCKED,
    client: str | None = "198.51.100.7",
    entry_id: str = "entry-17",
) -> Detection:
    """A blocked PDQ match, as the HTTP policy would record it."""
    verdict = Verdict(
        kind=VerdictKind.MATCH,
        sha256=sha256,
        match=Match(
            list_name="known",
            entry_id=entry_id,
            algorithm="pdq",
            distance=4,
            frame=0,
            query_hash="f" * 64,
            list_hash="e" * 64,
        ),
        hashes={"pdq": "f" * 64, "md5": "d" * 32, "sha256": sha256},
        lists_generation=3,
    )
    return Detection(
        verdict=verdict,
        action=action,
        method="GET",
        host=host,
        path=path,
        query=query,
        md5="d" * 32,
        client=client,
    )


def uninspectable_detection(path: str = "/u/big.png", *, sha256: str = SHA_B) -> Detection:
    verdict = Verdict(
        kind=VerdictKind.UNINSPECTABLE,
        sha256=sha256,
        reason=Reason.TOO_LARGE,
        detail="body larger than 32 MiB",
    )
    return Detection(verdict=verdict, action=Action.BLOCKED, method="GET", host="h", path=path)
