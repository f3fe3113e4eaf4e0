"""The store's schema as numbered migrations, applied in order inside one write transaction.

``schema_version`` holds the version a file is at. A file at an older version is brought up to
date when opened; a file from a newer safemedia is refused rather than misread. Never edit a
migration that has shipped: add the next one.
"""

from __future__ import annotations

import sqlite3

from safemedia.store.db import StoreError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: detections, blocks, outbox, allow-list, addresses and codes, audit trail.
    (
        """CREATE TABLE detections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            method TEXT NOT NULL,
            host TEXT NOT NULL,
            path TEXT NOT NULL,
            query TEXT NOT NULL,
            url TEXT NOT NULL,
            kind TEXT NOT NULL,
            list_name TEXT,
            entry_id TEXT,
            algorithm TEXT,
            distance INTEGER,
            frame INTEGER,
            query_hash TEXT,
            list_hash TEXT,
            reason TEXT,
            detail TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            md5 TEXT NOT NULL,
            hashes TEXT NOT NULL,
            lists_generation INTEGER NOT NULL,
            action TEXT NOT NULL,
            client TEXT
        )""",
        "CREATE INDEX detections_by_time ON detections (time)",
        "CREATE INDEX detections_by_sha256 ON detections (sha256)",
        """CREATE TABLE blocked_urls (
            url TEXT PRIMARY KEY,
            detection_id INTEGER NOT NULL REFERENCES detections (id),
            sha256 TEXT NOT NULL,
            time TEXT NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX blocked_by_sha256 ON blocked_urls (sha256)",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            detection_id INTEGER NOT NULL REFERENCES detections (id),
            created REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL DEFAULT 0,
            claimed_by TEXT,
            claim_expires REAL,
            sent_at REAL,
            sent_to TEXT,
            last_error TEXT
        )""",
        "CREATE INDEX outbox_pending ON outbox (next_attempt) WHERE sent_at IS NULL",
        """CREATE TABLE allowed_sha256 (
            sha256 TEXT PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT NOT NULL,
            detection_id INTEGER
        ) WITHOUT ROWID""",
        """CREATE TABLE addresses (
            address TEXT PRIMARY KEY,
            verified_at TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE verification_codes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            address TEXT NOT NULL,
            code_hash TEXT NOT NULL,
            created TEXT NOT NULL,
            expires REAL NOT NULL,
            failed_attempts INTEGER NOT NULL DEFAULT 0,
            used_at TEXT
        )""",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL
        )""",
    ),
    # 2: shared notifier state (when the last mail went out, for the digest window).
    (
        """CREATE TABLE notify_state (
            key TEXT PRIMARY KEY,
            value REAL NOT NULL
        ) WITHOUT ROWID""",
    ),
    # 3: change counts, so a process can keep the blocked URLs and the allow-list in memory and
    # re-read them only when they changed (see safemedia.lookups.StoreSet).
    (
        """CREATE TABLE change_counts (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID""",
        "INSERT INTO change_counts (name, value) VALUES ('blocked_urls', 0), ('allowed_sha256', 0)",
        """CREATE TRIGGER blocked_urls_insert_counted AFTER INSERT ON blocked_urls
        BEGIN UPDATE change_counts SET value = value + 1 WHERE name = 'blocked_urls'; END""",
        """CREATE TRIGGER blocked_urls_update_counted AFTER UPDATE ON blocked_urls
        BEGIN UPDATE change_counts SET value = value + 1 WHERE name = 'blocked_urls'; END""",
        """CREATE TRIGGER blocked_urls_delete_counted AFTER DELETE ON blocked_urls
        BEGIN UPDATE change_counts SET value = value + 1 WHERE name = 'blocked_urls'; END""",
        """CREATE TRIGGER allowed_sha256_insert_counted AFTER INSERT ON allowed_sha256
        BEGIN UPDATE change_counts SET value = value + 1 WHERE name = 'allowed_sha256'; END""",
        """CREATE TRIGGER allowed_sha256_update_counted AFTER UPDATE ON allowed_sha256
        BEGIN UPDATE change_counts SET value = value + 1 WHERE name = 'allowed_sha256'; END""",
        """CREATE TRIGGER allowed_sha256_delete_counted AFTER DELETE ON allowed_sha256
        BEGIN UPDATE change_counts SET value = value + 1 WHERE name = 'allowed_sha256'; END""",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """The version a database is at (0 for an empty file)."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return int(version or 0)


def migrate(conn: sqlite3.Connection, *, target: int = SCHEMA_VERSION, label: str = "") -> int:
    """Bring the database up to ``target``; call inside a write transaction. Returns the old one."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the safemedia store {label} has schema version {version}, newer than this "
            f"safemedia supports ({SCHEMA_VERSION}): upgrade safemedia"
        )
    for number in range(version + 1, target + 1):
        for statement in MIGRATIONS[number - 1]:
            conn.execute(statement)
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    return version
