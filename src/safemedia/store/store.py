"""The durable store: detections, blocked URLs, allow-list, verified addresses, audit trail.

Usage::

    store = open_store(config)                   # sqlite:///path (WAL) or memory:
    engine = Engine(config, is_allowed=store.is_allowed)
    store.record(detection)                      # detection + block + outbox, one transaction
    store.is_blocked("example.org/u/1.jpg")      # sees other processes' blocks at once
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from safemedia.config import DEFAULT_STORE, Config
from safemedia.events import Action, Detection
from safemedia.store.db import Database, StoreError
from safemedia.store.outbox import Outbox
from safemedia.store.records import (
    AuditEntry,
    BlockedUrl,
    StoredDetection,
    UnblockResult,
    audit_entry,
    blocked_url,
    detection_row,
    format_time,
    now_text,
    stored_detection,
)
from safemedia.store.schema import migrate

logger = logging.getLogger("safemedia.store")

SetTable = Literal["blocked_urls", "allowed_sha256"]
SET_TABLES: dict[str, str] = {"blocked_urls": "url", "allowed_sha256": "sha256"}
"""Tables a process may keep in memory (:class:`safemedia.lookups.StoreSet`), and their keys."""

CODE_TTL = 3600.0
CODE_MAX_FAILURES = 5


def store_path(config: Config) -> Path | None:
    """The SQLite file ``config.store`` names (relative to the working folder), None for memory."""
    url = config.store
    if url.startswith("memory:"):
        return None
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :]).expanduser().resolve()
    raise StoreError(f"store {url!r}: only sqlite:///PATH and memory: are supported")


def open_store(config: Config, *, pragmas: Sequence[str] = (), quiet: bool = False) -> Store:
    """Open (creating and migrating as needed) the store ``config.store`` names.

    Logs where the state is kept (a warning for the default path) unless ``quiet``.
    """
    path = store_path(config)
    db = Database(path, pragmas=pragmas)
    db.write(lambda conn: migrate(conn, label=db.label), what="migrate the schema")
    if not quiet:
        _announce(config, db.label)
    return Store(db, config)


def _announce(config: Config, label: str) -> None:
    default_name = DEFAULT_STORE.rpartition("/")[2]
    if config.store == DEFAULT_STORE or label.endswith("/" + default_name):
        logger.warning(
            "safemedia: no store configured; state is kept in %s (set 'store' to choose)", label
        )
    else:
        logger.info("safemedia: state is kept in %s", label)


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


class Store:
    """Durable state on one :class:`Database`; implements ``DetectionRecorder``."""

    def __init__(self, db: Database, config: Config) -> None:
        self.db = db
        self.config = config
        self.outbox = Outbox(db)
        self.on_enqueue: Callable[[], None] | None = None
        """Called after a detection's outbox entry is committed (the notifier's wake-up)."""

    @property
    def label(self) -> str:
        """The file the state is in (``memory:`` for a private in-memory store)."""
        return self.db.label

    def close(self) -> None:
        self.db.close()

    # -- recording (the hot path) ----------------------------------------------------------

    def record(self, detection: Detection) -> None:
        """Commit the detection, its URL block and its outbox entry before returning.

        Raises :class:`StoreError` when that is impossible (read-only file, disk full).
        """
        self.add_detection(detection)

    def add_detection(self, detection: Detection, *, notify: bool = True) -> int:
        """Record ``detection`` in one transaction; returns its id.

        A blocked match blocks its URL (see :attr:`Detection.blocks_url`); with ``notify``, every
        blocked detection (match or uninspectable) queues a notification.
        """
        row = detection_row(detection, record_client=self.config.record_client_address)
        blocked = detection.action is Action.BLOCKED
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))

        def txn(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                f"INSERT INTO detections ({columns}) VALUES ({marks})", tuple(row.values())
            )
            detection_id = int(cur.lastrowid or 0)
            if detection.blocks_url:
                conn.execute(
                    "INSERT INTO blocked_urls (url, detection_id, sha256, time)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (url) DO NOTHING",
                    (row["url"], detection_id, row["sha256"], row["time"]),
                )
            if blocked and notify:
                conn.execute(
                    "INSERT INTO outbox (detection_id, created) VALUES (?, ?)",
                    (detection_id, time.time()),
                )
            return detection_id

        detection_id = self.db.write(txn, what="record a detection")
        if blocked and notify and self.on_enqueue is not None:
            try:
                self.on_enqueue()
            except Exception:  # the detection is committed; a wake-up failure must not matter
                logger.exception("safemedia: notifier wake-up failed")
        return detection_id

    def is_blocked(self, url: str) -> bool:
        """Whether ``url`` is blocked (by any process sharing this store)."""
        row = self.db.read(
            lambda conn: conn.execute(
                "SELECT 1 FROM blocked_urls WHERE url = ?", (url,)
            ).fetchone(),
            what="check a blocked URL",
        )
        return row is not None

    def change_count(self, table: SetTable) -> int:
        """A number that changes whenever ``table`` changes (by any process)."""
        row = self.db.read(
            lambda conn: conn.execute(
                "SELECT value FROM change_counts WHERE name = ?", (table,)
            ).fetchone(),
            what=f"check {table}",
        )
        return int(row[0]) if row is not None else 0

    def key_set(self, table: SetTable, limit: int) -> tuple[int, frozenset[str] | None]:
        """:meth:`change_count` and every key of ``table`` (URLs, sha256s), in one snapshot.

        The set is None when there are more than ``limit`` keys (ask per key instead).
        """
        column = SET_TABLES[table]

        def read(conn: sqlite3.Connection) -> tuple[int, frozenset[str] | None]:
            row = conn.execute(
                "SELECT value FROM change_counts WHERE name = ?", (table,)
            ).fetchone()
            version = int(row[0]) if row is not None else 0
            keys = conn.execute(f"SELECT {column} FROM {table} LIMIT ?", (limit + 1,)).fetchall()
            if len(keys) > limit:
                return version, None
            return version, frozenset(key for (key,) in keys)

        return self.db.read(read, what=f"read {table}", snapshot=True)

    def is_allowed(self, sha256: str) -> bool:
        """Whether bodies with ``sha256`` were reviewed as false positives (never a match)."""
        row = self.db.read(
            lambda conn: conn.execute(
                "SELECT 1 FROM allowed_sha256 WHERE sha256 = ?", (sha256.lower(),)
            ).fetchone(),
            what="check the allow-list",
        )
        return row is not None

    # -- reading -----------------------------------------------------------------------------

    def detections(
        self, *, since: datetime | None = None, limit: int | None = None
    ) -> list[StoredDetection]:
        """Detections in time order, optionally from ``since`` on (the newest ``limit``)."""
        params: list[Any] = []
        sql = "SELECT * FROM detections"
        if since is not None:
            sql += " WHERE time >= ?"
            params.append(format_time(since))
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self.db.read(lambda conn: conn.execute(sql, params).fetchall())
        return [stored_detection(r) for r in reversed(rows)]

    def detection(self, detection_id: int) -> StoredDetection | None:
        row = self.db.read(
            lambda conn: conn.execute(
                "SELECT * FROM detections WHERE id = ?", (detection_id,)
            ).fetchone()
        )
        return stored_detection(row) if row is not None else None

    def blocked(self) -> list[BlockedUrl]:
        """Every URL currently blocked, oldest first."""
        rows = self.db.read(
            lambda conn: conn.execute("SELECT * FROM blocked_urls ORDER BY time, url").fetchall()
        )
        return [blocked_url(r) for r in rows]

    def audit_trail(self) -> list[AuditEntry]:
        rows = self.db.read(lambda conn: conn.execute("SELECT * FROM audit ORDER BY id").fetchall())
        return [audit_entry(r) for r in rows]

    # -- operator actions --------------------------------------------------------------------

    def unblock(self, target: str, *, reason: str, actor: str | None = None) -> UnblockResult:
        """Lift the block on a URL (or an event id's URL) and allow-list its image's sha256.

        Every other URL blocked for the same bytes is lifted too; the review is audited.
        Raises :class:`LookupError` when ``target`` is neither a blocked URL nor an event id.
        """
        if not reason.strip():
            raise ValueError("a reason is required")
        who = actor or default_actor()

        def txn(conn: sqlite3.Connection) -> UnblockResult:
            detection_id: int | None
            row = conn.execute("SELECT * FROM blocked_urls WHERE url = ?", (target,)).fetchone()
            if row is not None:
                sha256, detection_id = row["sha256"], int(row["detection_id"])
            elif target.isdigit():
                found = conn.execute(
                    "SELECT id, sha256 FROM detections WHERE id = ?", (int(target),)
                ).fetchone()
                if found is None:
                    raise LookupError(f"no event {target}")
                sha256, detection_id = found["sha256"], int(found["id"])
            else:
                raise LookupError(f"{target!r} is neither a blocked URL nor an event id")
            urls = tuple(
                r[0]
                for r in conn.execute(
                    "SELECT url FROM blocked_urls WHERE sha256 = ? ORDER BY url", (sha256,)
                )
            )
            conn.execute("DELETE FROM blocked_urls WHERE sha256 = ?", (sha256,))
            conn.execute(
                "INSERT INTO allowed_sha256 (sha256, time, actor, reason, detection_id)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET"
                " time = excluded.time, actor = excluded.actor, reason = excluded.reason",
                (sha256, now_text(), who, reason, detection_id),
            )
            self._audit(
                conn,
                who,
                "unblock",
                target,
                reason,
                {"urls": list(urls), "sha256": sha256, "detection_id": detection_id},
            )
            return UnblockResult(urls=urls, sha256=sha256, detection_id=detection_id)

        return self.db.write(txn, what="unblock")

    def _audit(
        self,
        conn: sqlite3.Connection,
        actor: str,
        action: str,
        subject: str,
        reason: str,
        detail: dict[str, Any],
    ) -> None:
        conn.execute(
            "INSERT INTO audit (time, actor, action, subject, reason, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (now_text(), actor, action, subject, reason, json.dumps(detail, sort_keys=True)),
        )

    # -- verified addresses --------------------------------------------------------------------

    def new_verification_code(self, address: str, *, ttl: float = CODE_TTL) -> str:
        """A one-time code for ``address``; only its hash is stored. Earlier codes stop working."""
        code = f"{secrets.randbelow(10**8):08d}"
        key = address.strip().lower()

        def txn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE verification_codes SET used_at = ? WHERE address = ? AND used_at IS NULL",
                ("superseded " + now_text(), key),
            )
            conn.execute(
                "INSERT INTO verification_codes (address, code_hash, created, expires)"
                " VALUES (?, ?, ?, ?)",
                (key, _hash_code(code), now_text(), time.time() + ttl),
            )

        self.db.write(txn, what="store a verification code")
        return code

    def confirm_code(self, code: str, *, actor: str | None = None) -> str:
        """Mark the address ``code`` was sent to as verified; returns it.

        Raises :class:`LookupError` for a wrong, used or expired code (a code dies after
        a few wrong tries).
        """
        digest = _hash_code(code)
        who = actor or default_actor()

        def txn(conn: sqlite3.Connection) -> str | None:
            live = conn.execute(
                "SELECT id, address, code_hash FROM verification_codes"
                " WHERE used_at IS NULL AND expires > ? AND failed_attempts < ?",
                (time.time(), CODE_MAX_FAILURES),
            ).fetchall()
            for row in live:
                if hmac.compare_digest(row["code_hash"], digest):
                    conn.execute(
                        "UPDATE verification_codes SET used_at = ? WHERE id = ?",
                        (now_text(), row["id"]),
                    )
                    conn.execute(
                        "INSERT INTO addresses (address, verified_at) VALUES (?, ?)"
                        " ON CONFLICT (address) DO UPDATE SET verified_at = excluded.verified_at",
                        (row["address"], now_text()),
                    )
                    self._audit(conn, who, "verify address", row["address"], "code confirmed", {})
                    return str(row["address"])
            conn.execute(
                "UPDATE verification_codes SET failed_attempts = failed_attempts + 1"
                " WHERE used_at IS NULL AND expires > ?",
                (time.time(),),
            )
            return None

        address = self.db.write(txn, what="confirm a verification code")
        if address is None:
            raise LookupError("wrong, used or expired code")
        return address

    def is_verified(self, address: str | None) -> bool:
        if not address:
            return False
        key = address.strip().lower()
        row = self.db.read(
            lambda conn: conn.execute(
                "SELECT 1 FROM addresses WHERE address = ?", (key,)
            ).fetchone()
        )
        return row is not None
