"""SQLite access shared by threads and processes: a small connection pool, WAL, retried writes.

Every write runs in ``BEGIN IMMEDIATE`` (the write lock is taken up front, so a transaction never
fails half-way on a lock upgrade); a busy database is waited for (``busy_timeout``) and then retried
with backoff until a deadline, so "database is locked" never reaches a request under normal load.
Any other SQLite or OS failure becomes a :class:`StoreError` naming the file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

logger = logging.getLogger("safemedia.store")

T = TypeVar("T")

_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_MAX_IDLE = 8
_INHERITED: list[sqlite3.Connection] = []


class StoreError(RuntimeError):
    """The durable store cannot be read or written (read-only file, disk full, corrupt, ...)."""


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Database:
    """A pool of connections to one SQLite file (or a private in-memory database)."""

    def __init__(
        self,
        path: Path | None,
        *,
        busy_timeout: float = 5.0,
        retry_deadline: float = 30.0,
        pragmas: Sequence[str] = (),
    ) -> None:
        self.path = path
        self.label = str(path) if path is not None else "memory:"
        self._busy_timeout = busy_timeout
        self._retry_deadline = retry_deadline
        self._pragmas = tuple(pragmas)
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        # An in-memory database lives as long as one connection to it: keep exactly one, serialised.
        self._memory_uri = f"file:safemedia-{uuid.uuid4().hex}?mode=memory&cache=shared"
        self._memory_conn: sqlite3.Connection | None = None
        self._memory_lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._lock_file: int | None = None
        self._lock_pid = 0
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder for the store {path}: {exc}") from exc

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.path is None:
                conn = sqlite3.connect(
                    self._memory_uri, uri=True, isolation_level=None, check_same_thread=False
                )
            else:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
                self._retrying(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
                conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            for pragma in self._pragmas:
                conn.execute(pragma)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the safemedia store {self.label}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for this thread's use; returned to the pool afterwards."""
        if self._closed:
            raise StoreError(f"the safemedia store {self.label} is closed")
        if self.path is None:
            with self._memory_lock:
                if self._memory_conn is None:
                    self._memory_conn = self._connect()
                yield self._memory_conn
            return
        with self._lock:
            if self._pid != os.getpid():
                # Forked (e.g. gunicorn --preload): the parent's connections are not ours to use,
                # nor to close (SQLite forbids both); keep them referenced, never touched.
                _INHERITED.extend(self._idle)
                self._idle = []
                self._pid = os.getpid()
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()
            with self._lock:
                keep = not self._closed and len(self._idle) < _MAX_IDLE
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def close(self) -> None:
        """Close every idle connection; later use raises :class:`StoreError`."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        if self._lock_file is not None and self._lock_pid == os.getpid():
            os.close(self._lock_file)
            self._lock_file = None
        with self._memory_lock:
            if self._memory_conn is not None:
                self._memory_conn.close()
                self._memory_conn = None

    # -- transactions ------------------------------------------------------------------------

    def _retrying(self, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._retry_deadline
        delay = 0.005
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() + delay > deadline:
                    raise
                logger.debug("safemedia store busy, retrying in %.3f s", delay)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)

    def write(self, fn: Callable[[sqlite3.Connection], T], *, what: str = "write") -> T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction, committed before returning."""

        def attempt() -> T:
            with self._writer_turn(), self.connection() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.rollback()
                    raise
                return result

        return self._guard(attempt, what)

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """Writers of all processes take turns on a lock file, waking as soon as it is free
        (SQLite's own busy wait polls with sleeps of up to 100 ms, so a writer can wait for
        seconds in a burst); the busy timeout and retries stay as the fallback."""
        if self.path is None:
            yield
            return
        with self._write_lock:
            fd = self._lock_fd()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_fd(self) -> int | None:
        pid = os.getpid()
        if self._lock_pid != pid:
            # After a fork the inherited descriptor shares the parent's lock: open our own.
            # Read-only is enough for flock, so an operator's command run as another user (who
            # can read the store) takes turns with the app too.
            assert self.path is not None
            try:
                self._lock_file = os.open(
                    f"{self.path}.lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644
                )
            except OSError as exc:
                logger.warning("safemedia store: no writer lock file (%s); using SQLite's", exc)
                self._lock_file = None
            self._lock_pid = pid
        return self._lock_file

    def read(
        self, fn: Callable[[sqlite3.Connection], T], *, what: str = "read", snapshot: bool = False
    ) -> T:
        """Run ``fn`` on a pooled connection; with ``snapshot``, in one read transaction."""

        def attempt() -> T:
            with self.connection() as conn:
                if not snapshot:
                    return fn(conn)
                conn.execute("BEGIN")
                try:
                    return fn(conn)
                finally:
                    if conn.in_transaction:
                        conn.rollback()

        return self._guard(attempt, what)

    def _guard(self, attempt: Callable[[], T], what: str) -> T:
        try:
            return self._retrying(attempt)
        except StoreError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"safemedia store {self.label}: cannot {what}: {exc}") from exc
