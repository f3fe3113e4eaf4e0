"""Faults around a running server: SMTP down, the SQLite store unwritable, a garbage hash list,
SIGKILL in the middle of writes. Real servers, a real aiosmtpd, real SQLite files.

The store faults are made for real: a 2 MB tmpfs filled to the last byte (disk full) and the
immutable flag on the database and its WAL (read-only, even for root). Both need root; without it
those two tests skip, saying so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from safemedia.config import Config
from safemedia.store import open_store
from tests.adversarial.evidence import record
from tests.adversarial.servers import app_server
from tests.adversarial.site import Site, write_config
from tests.realserver import Server, free_port
from tests.smtp_support import Inbox, smtp_server

pytest.importorskip("safemedia.engine")

BLOCKED = 451
OPERATOR = "ops@example.org"


def verify_address(config_path: Path, address: str = OPERATOR) -> None:
    """Mark ``address`` verified in the store, as `safemedia email confirm` would."""
    store = open_store(Config.from_file(config_path, env=False))
    try:
        store.confirm_code(store.new_verification_code(address))
    finally:
        store.close()


def stored_paths(config_path: Path) -> list[str]:
    """``path?query`` of every detection in the store."""
    store = open_store(Config.from_file(config_path, env=False))
    try:
        return [d.path + (f"?{d.query}" if d.query else "") for d in store.detections()]
    finally:
        store.close()


def wait_for(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


# --- SMTP ---------------------------------------------------------------------------------------


def test_alerts_wait_while_smtp_is_down_and_each_is_mailed_once_when_it_is_back(
    site: Site, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here until the SMTP server "comes back"
    config = write_config(
        site,
        tmp_path,
        notify_to=OPERATOR,
        notify_digest_window=0.5,
        notify_retry_initial=0.5,
        notify_retry_max=2.0,
        smtp={"host": "127.0.0.1", "port": port, "timeout": 2.0},
    )
    verify_address(config)
    tokens = [f"smtp-down-{n}" for n in range(8)]
    with (
        app_server("gunicorn", site, config, workers=2) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for n, token in enumerate(tokens):
            name = ("listed-a.jpg", "listed-b.png")[n % 2]
            assert client.get(f"/static/{name}?t={token}").status_code == BLOCKED
        wait_for(lambda: "cannot mail" in server.output(), 20, "a logged SMTP failure")
        time.sleep(2)  # a few more failed attempts, with backoff
        inbox = Inbox()
        with smtp_server(port=port, inbox=inbox):

            def all_mailed() -> bool:
                text = [m.as_string() for m in inbox.messages]
                return all(any(t in body for body in text) for t in tokens)

            wait_for(all_mailed, 40, "every alert to be mailed")
            time.sleep(3)  # a duplicate, if any, would arrive now
            bodies = [m.as_string() for m in inbox.messages]
    per_token = {t: sum(t in body for body in bodies) for t in tokens}
    record("smtp-outage", {"detections": len(tokens), "mails": len(bodies), "per_alert": per_token})
    assert all(count == 1 for count in per_token.values()), per_token


# --- the store unwritable --------------------------------------------------------------------


@contextlib.contextmanager
def tiny_disk(where: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (root only; skips the test otherwise)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; returns the filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def check_blocking_without_a_store(client: httpx.Client, site: Site, tag: str) -> None:
    """Listed images still blocked, clean ones served byte-identical, nothing 5xx."""
    for n, name in enumerate(("listed-a.jpg", "listed-c.webp", "mirror-a.jpg")):
        response = client.get(f"/static/{name}?t={tag}-{n}")
        assert response.status_code == BLOCKED, (name, response.status_code)
    for name in list(site.clean)[:10]:
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, (name, response.status_code)
        assert response.content == site.body(name)


def test_disk_full_still_blocks_listed_images_serves_clean_ones_and_logs_loudly(
    site: Site, tmp_path: Path
) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        config = write_config(site, tmp_path / "conf", store=f"sqlite:///{disk / 'state.db'}")
        with (
            app_server("uvicorn", site, config) as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            assert client.get("/static/listed-b.png?t=before-full").status_code == BLOCKED
            filler = fill(disk)
            check_blocking_without_a_store(client, site, "disk-full")
            wait_for(lambda: "could not record" in server.output(), 10, "a logged store error")
            assert "full" in server.output().lower()
            filler.unlink()
            assert client.get("/static/listed-b.png?t=after-full").status_code == BLOCKED
        stored = stored_paths(config)
    assert "/static/listed-b.png?t=before-full" in stored
    assert "/static/listed-b.png?t=after-full" in stored  # recording resumed once space was back


def test_read_only_store_still_blocks_listed_images_serves_clean_ones_and_logs_loudly(
    site: Site, tmp_path: Path
) -> None:
    config = write_config(site, tmp_path)
    database = tmp_path / "state.db"
    with (
        app_server("uvicorn", site, config) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert client.get("/static/listed-b.png?t=before-ro").status_code == BLOCKED
        files = [p for p in (database, Path(f"{database}-wal")) if p.exists()]
        # The immutable flag: even root cannot write. (The -shm is left alone: SQLite maps it.)
        made = subprocess.run(["chattr", "+i", *map(str, files)], capture_output=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"chattr +i is not available here: {made.stderr!r}")
        try:
            check_blocking_without_a_store(client, site, "read-only")
            wait_for(lambda: "could not record" in server.output(), 10, "a logged store error")
        finally:
            subprocess.run(["chattr", "-i", *map(str, files)], check=False)
    stored = stored_paths(config)
    assert "/static/listed-b.png?t=before-ro" in stored


# --- a garbage hash list -----------------------------------------------------------------------


def test_garbage_hash_list_keeps_the_old_list_in_force_and_logs_the_error(
    site: Site, tmp_path: Path
) -> None:
    config = write_config(site, tmp_path)
    with (
        app_server("uvicorn", site, config) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        before = client.get("/_stats").json()["engine"]
        (tmp_path / "list.txt").write_bytes(
            b"pdq not-a-hash\n\x00\xff\xfe garbage \x89PNG\nmd5 12\n"
        )

        def reload_failed() -> bool:
            return bool(client.get("/_stats").json()["engine"]["list_errors"])

        wait_for(reload_failed, 10, "the engine to report the bad list")
        after = client.get("/_stats").json()["engine"]
        assert after["lists_generation"] == before["lists_generation"]
        assert after["entries"] == before["entries"]
        for n, name in enumerate(("listed-a.jpg", "listed-d.jpg", "rotated-a.png")):
            assert client.get(f"/static/{name}?t=garbage-{n}").status_code == BLOCKED
        assert client.get("/static/clean-04.jpg").content == site.body("clean-04.jpg")
        assert "list.txt" in server.output()


# --- SIGKILL in the middle of writes -----------------------------------------------------------


def test_sigkill_during_writes_leaves_a_consistent_store_with_every_answered_block(
    site: Site, tmp_path: Path
) -> None:
    config = write_config(site, tmp_path)
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer(server: Server, worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            n = 0
            while not stop.is_set():
                path = f"/any/kill-{worker}-{n}.jpg"
                n += 1
                try:
                    response = client.get(path)
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == BLOCKED:
                    with lock:
                        answered.append(path)

    with app_server("gunicorn", site, config, workers=2) as server:
        with ThreadPoolExecutor(8) as pool:
            for worker in range(8):
                pool.submit(hammer, server, worker)
            wait_for(lambda: len(answered) >= 40, 60, "blocks to be answered")
            os.killpg(server.process.pid, signal.SIGKILL)
            stop.set()
        server.process.wait(10)
    database = tmp_path / "state.db"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # A restart opens the same store (and recovers its WAL) and serves again.
    with (
        app_server("gunicorn", site, config, workers=2) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert client.get("/static/clean-05.jpg").content == site.body("clean-05.jpg")
        assert client.get("/static/listed-a.jpg?t=after-restart").status_code == BLOCKED
    stored = set(stored_paths(config))
    lost = [path for path in answered if path not in stored]
    record("sigkill", {"blocks_answered_before_kill": len(answered), "lost": len(lost)})
    assert lost == [], f"{len(lost)} answered blocks were not in the store, e.g. {lost[:3]}"
