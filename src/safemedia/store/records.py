"""What the store gives back: detections, blocked URLs and audit entries as plain records."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from safemedia.events import Detection

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(moment: datetime) -> str:
    """UTC, fixed width, so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def now_text() -> str:
    return format_time(datetime.now(UTC))


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredDetection:
    """One recorded detection. Holds hashes and where it was served, never image bytes."""

    id: int
    time: datetime
    method: str
    host: str
    path: str
    query: str
    url: str
    kind: str
    list_name: str | None
    entry_id: str | None
    algorithm: str | None
    distance: int | None
    frame: int | None
    query_hash: str | None
    list_hash: str | None
    reason: str | None
    detail: str
    sha256: str
    md5: str
    hashes: dict[str, str]
    lists_generation: int
    action: str
    client: str | None

    @property
    def perceptual_hashes(self) -> dict[str, str]:
        """The body's perceptual signals (pdq, phash, ...), without the exact digests."""
        return {k: v for k, v in self.hashes.items() if k not in {"md5", "sha1", "sha256"}}

    def summary(self) -> str:
        """One line: what matched, or why the body could not be inspected."""
        if self.list_name is not None:
            return (
                f"list {self.list_name!r} entry {self.entry_id!r}, {self.algorithm} distance "
                f"{self.distance}" + (f" (frame {self.frame})" if self.frame else "")
            )
        if self.reason is not None:
            return f"uninspectable: {self.reason}" + (f" ({self.detail})" if self.detail else "")
        return self.kind

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = format_time(self.time)
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockedUrl:
    """A URL refused before the app is called, and the detection that blocked it."""

    url: str
    detection_id: int
    sha256: str
    time: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "detection_id": self.detection_id,
            "sha256": self.sha256,
            "time": format_time(self.time),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One operator action (unblock, address verified, ...), who did it and why."""

    id: int
    time: datetime
    actor: str
    action: str
    subject: str
    reason: str
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = format_time(self.time)
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class UnblockResult:
    """What ``unblock`` did: the URLs it lifted and the sha256 it allow-listed."""

    urls: tuple[str, ...]
    sha256: str
    detection_id: int | None


def detection_row(detection: Detection, *, record_client: bool) -> dict[str, Any]:
    """The column values for ``detection`` (no image bytes exist here to store)."""
    v = detection.verdict
    m = v.match
    hashes = {str(k): str(h) for k, h in v.hashes.items()}
    md5 = detection.md5 or hashes.get("md5", "")
    return {
        "time": format_time(detection.time),
        "method": detection.method,
        "host": detection.host,
        "path": detection.path,
        "query": detection.query,
        "url": detection.url,
        "kind": str(v.kind),
        "list_name": m.list_name if m else None,
        "entry_id": m.entry_id if m else None,
        "algorithm": m.algorithm if m else None,
        "distance": m.distance if m else None,
        "frame": m.frame if m else None,
        "query_hash": m.query_hash if m else None,
        "list_hash": m.list_hash if m else None,
        "reason": str(v.reason) if v.reason is not None else None,
        "detail": v.detail,
        "sha256": v.sha256,
        "md5": md5,
        "hashes": json.dumps(hashes, sort_keys=True),
        "lists_generation": v.lists_generation,
        "action": str(detection.action),
        "client": detection.client if record_client else None,
    }


def stored_detection(row: sqlite3.Row) -> StoredDetection:
    data = dict(row)
    data["time"] = parse_time(data["time"])
    data["hashes"] = json.loads(data["hashes"])
    return StoredDetection(**data)


def blocked_url(row: sqlite3.Row) -> BlockedUrl:
    return BlockedUrl(
        url=row["url"],
        detection_id=row["detection_id"],
        sha256=row["sha256"],
        time=parse_time(row["time"]),
    )


def audit_entry(row: sqlite3.Row) -> AuditEntry:
    data = dict(row)
    data["time"] = parse_time(data["time"])
    data["detail"] = json.loads(data["detail"])
    return AuditEntry(**data)
