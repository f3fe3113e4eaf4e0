"""The notification outbox: entries claimed atomically, so each is mailed by one process only.

An entry is written in the same transaction as its detection. A notifier claims due entries for a
lease (``claim_expires``); a claim counts as an attempt, so entries whose sender died (SIGKILL) are
retried at once when the lease runs out, without waiting for the digest window. Success marks them
sent; failure releases them with a capped exponential backoff. Nothing is ever deleted.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from safemedia.store.db import Database
from safemedia.store.records import StoredDetection, stored_detection

_LAST_MAIL = "last_mail"
MAX_PER_MAIL = 200


@dataclass(frozen=True, slots=True)
class Claim:
    """Entries claimed by one notifier for one mail; ``detections`` in entry order."""

    ids: tuple[int, ...]
    detections: tuple[StoredDetection, ...]
    digest: bool
    """True when earlier mail went out within the window (so this one is a digest)."""


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    pending: int
    sent: int
    oldest_pending: float | None
    last_error: str | None


class Outbox:
    """Claims, completes and retries outbox entries on a :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(
        self, *, owner: str, window: float, lease: float, now: float | None = None
    ) -> Claim | float | None:
        """Claim the due entries for one mail.

        Returns the :class:`Claim`; or seconds until the digest window lets the pending entries
        go; or ``None`` when nothing is pending and ready.
        """
        at = time.time() if now is None else now
        ready = (
            "SELECT id, detection_id, attempts FROM outbox WHERE sent_at IS NULL"
            " AND next_attempt <= ? AND (claim_expires IS NULL OR claim_expires < ?)"
            " ORDER BY id LIMIT ?"
        )
        # A cheap read first: most looks find nothing, and need not take the write lock.
        if self._db.read(lambda conn: conn.execute(ready, (at, at, 1)).fetchone()) is None:
            return None

        def txn(conn: sqlite3.Connection) -> Claim | float | None:
            rows = conn.execute(ready, (at, at, MAX_PER_MAIL)).fetchall()
            if not rows:
                return None
            state = conn.execute(
                "SELECT value FROM notify_state WHERE key = ?", (_LAST_MAIL,)
            ).fetchone()
            last = float(state[0]) if state is not None else None
            retry = any(r["attempts"] > 0 for r in rows)
            if last is not None and not retry and at < last + window:
                return last + window - at
            ids = tuple(int(r["id"]) for r in rows)
            marks = ",".join("?" * len(ids))
            conn.execute(
                f"UPDATE outbox SET claimed_by = ?, claim_expires = ?, attempts = attempts + 1"
                f" WHERE id IN ({marks})",
                (owner, at + lease, *ids),
            )
            conn.execute(
                "INSERT INTO notify_state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_LAST_MAIL, at),
            )
            detection_ids = [int(r["detection_id"]) for r in rows]
            found = {
                row["id"]: stored_detection(row)
                for row in conn.execute(
                    f"SELECT * FROM detections WHERE id IN ({marks})", detection_ids
                )
            }
            detections = tuple(found[i] for i in detection_ids if i in found)
            digest = last is not None and at < last + window
            return Claim(ids, detections, digest or len(detections) > 1)

        return self._db.write(txn, what="claim notifications")

    def mark_sent(self, ids: tuple[int, ...], *, owner: str, to: str) -> None:
        """Mark a claim's entries sent; the digest window runs from now (a slow send is not
        counted against it)."""
        marks = ",".join("?" * len(ids))
        at = time.time()

        def txn(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"UPDATE outbox SET sent_at = ?, sent_to = ?, claimed_by = NULL,"
                f" claim_expires = NULL, last_error = NULL WHERE id IN ({marks})"
                f" AND claimed_by = ?",
                (at, to, *ids, owner),
            )
            conn.execute(
                "INSERT INTO notify_state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                (_LAST_MAIL, at),
            )

        self._db.write(txn, what="mark notifications sent")

    def mark_failed(
        self,
        ids: tuple[int, ...],
        *,
        owner: str,
        error: str,
        initial: float,
        cap: float,
    ) -> float:
        """Release a failed claim; returns the delay before the next attempt."""
        marks = ",".join("?" * len(ids))

        def txn(conn: sqlite3.Connection) -> float:
            rows = conn.execute(
                f"SELECT max(attempts) FROM outbox WHERE id IN ({marks})", ids
            ).fetchone()
            attempts = int(rows[0] or 1)
            delay = float(min(cap, initial * 2 ** max(0, attempts - 1)))
            conn.execute(
                f"UPDATE outbox SET claimed_by = NULL, claim_expires = NULL, next_attempt = ?,"
                f" last_error = ? WHERE id IN ({marks}) AND claimed_by = ?",
                (time.time() + delay, error[:1000], *ids, owner),
            )
            return delay

        return self._db.write(txn, what="release failed notifications")

    def status(self) -> OutboxStatus:
        def query(conn: sqlite3.Connection) -> OutboxStatus:
            row = conn.execute(
                "SELECT sum(sent_at IS NULL), sum(sent_at IS NOT NULL),"
                " min(CASE WHEN sent_at IS NULL THEN created END) FROM outbox"
            ).fetchone()
            err = conn.execute(
                "SELECT last_error FROM outbox WHERE sent_at IS NULL AND last_error IS NOT NULL"
                " ORDER BY id DESC LIMIT 1"
            ).fetchone()
            return OutboxStatus(
                pending=int(row[0] or 0),
                sent=int(row[1] or 0),
                oldest_pending=row[2],
                last_error=err[0] if err else None,
            )

        return self._db.read(query, what="read the outbox", snapshot=True)
