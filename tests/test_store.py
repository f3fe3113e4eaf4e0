"""The durable store on real SQLite files: recording, blocks, allow-list, codes, migrations."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from safemedia.config import Config
from safemedia.events import Action
from safemedia.store import SCHEMA_VERSION, StoreError, open_store
from safemedia.store.db import Database
from safemedia.store.schema import migrate
from safemedia.store.store import Store
from tests.store_support import SHA_A, SHA_B, match_detection, store_config, uninspectable_detection


def test_a_recorded_block_is_durable_and_seen_by_a_second_opener(tmp_path: Path) -> None:
    config = store_config(tmp_path)
    writer = open_store(config)
    writer.record(match_detection("/u/1.jpg", query="size=big"))
    reader = open_store(config)  # another process would open it the same way
    assert reader.is_blocked("example.org/u/1.jpg?size=big")
    assert not reader.is_blocked("example.org/u/1.jpg")
    [event] = reader.detections()
    assert (event.list_name, event.entry_id, event.algorithm, event.distance) == (
        "known",
        "entry-17",
        "pdq",
        4,
    )
    assert (event.sha256, event.md5, event.perceptual_hashes) == (
        SHA_A,
        "d" * 32,
        {"pdq": "f" * 64},
    )
    assert event.action == "blocked"
    assert reader.outbox.status().pending == 1
    writer.close()
    reader.close()


def test_detection_row_has_no_client_address_unless_turned_on(tmp_path: Path) -> None:
    off = open_store(store_config(tmp_path / "off"))
    off.record(match_detection())
    assert off.detections()[0].client is None
    on = open_store(store_config(tmp_path / "on", record_client_address=True))
    on.record(match_detection())
    assert on.detections()[0].client == "198.51.100.7"


def test_allowed_detection_records_but_neither_blocks_nor_mails(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path))
    store.record(match_detection(action=Action.ALLOWED))
    assert len(store.detections()) == 1
    assert not store.is_blocked("example.org/u/1.jpg")
    assert store.outbox.status().pending == 0


def test_uninspectable_detection_keeps_its_reason(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path))
    store.record(uninspectable_detection())
    [event] = store.detections()
    assert (event.kind, event.reason, event.list_name) == ("uninspectable", "too_large", None)
    assert "too_large" in event.summary()


def test_uninspectable_response_is_refused_and_mailed_but_its_url_stays_open(
    tmp_path: Path,
) -> None:
    store = open_store(store_config(tmp_path))
    store.record(uninspectable_detection("/u/big.png"))
    assert not store.is_blocked("example.org/u/big.png")  # the next response is checked again
    assert store.outbox.status().pending == 1


def test_old_schema_file_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    config = store_config(tmp_path)
    path = tmp_path / "state.db"
    old = Database(path)
    old.write(lambda conn: migrate(conn, target=1))
    Store(old, config).record(match_detection())
    old.close()
    store = open_store(config)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store.is_blocked("example.org/u/1.jpg")
    assert store.outbox.claim(owner="t", window=600, lease=10) is not None


def test_file_from_a_newer_safemedia_is_refused(tmp_path: Path) -> None:
    config = store_config(tmp_path)
    open_store(config).close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("UPDATE schema_version SET version = 999")
    with pytest.raises(StoreError, match="newer than this safemedia"):
        open_store(config)


def test_full_disk_raises_store_error_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    config = store_config(tmp_path)
    open_store(config).close()
    # max_page_count is clamped to the file's current size: the next page needed is "disk full".
    full = open_store(config, pragmas=["PRAGMA max_page_count = 1"])
    big = match_detection("/u/" + "x" * 200_000 + ".jpg")
    with pytest.raises(StoreError, match="full"):
        full.record(big)
    reader = open_store(config)
    assert reader.detections() == []
    assert reader.blocked() == []
    assert reader.outbox.status().pending == 0


def test_unknown_store_scheme_is_a_clear_error(tmp_path: Path) -> None:
    config = Config(store="redis://localhost/0")  # the constructor does not validate
    with pytest.raises(StoreError, match=r"sqlite:///PATH"):
        open_store(config)


def test_default_store_is_next_to_the_config_file_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "safemedia.toml").write_text("[safemedia]\n", encoding="utf-8")
    config = Config.from_file(tmp_path / "safemedia.toml", env=False)
    assert config.store == f"sqlite:///{tmp_path / 'safemedia-state.db'}"
    with caplog.at_level(logging.WARNING, logger="safemedia.store"):
        open_store(config).close()
    assert f"state is kept in {tmp_path / 'safemedia-state.db'}" in caplog.text


def test_unblock_by_event_lifts_every_url_of_those_bytes_and_allows_them(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path))
    store.record(match_detection("/u/1.jpg"))
    store.record(match_detection("/mirror/1.jpg"))
    store.record(match_detection("/u/other.jpg", sha256=SHA_B))
    first = store.detections()[0].id
    result = store.unblock(str(first), reason="reviewed: a cat", actor="alice")
    assert set(result.urls) == {"example.org/u/1.jpg", "example.org/mirror/1.jpg"}
    assert not store.is_blocked("example.org/mirror/1.jpg")
    assert store.is_blocked("example.org/u/other.jpg")
    assert store.is_allowed(SHA_A)
    assert not store.is_allowed(SHA_B)
    [entry] = store.audit_trail()
    assert (entry.actor, entry.action, entry.reason) == ("alice", "unblock", "reviewed: a cat")
    assert entry.detail["sha256"] == SHA_A


def test_unblock_by_url_and_unknown_targets(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path))
    store.record(match_detection("/u/1.jpg"))
    assert store.unblock("example.org/u/1.jpg", reason="ok").sha256 == SHA_A
    with pytest.raises(LookupError, match="neither"):
        store.unblock("example.org/never.jpg", reason="ok")
    with pytest.raises(LookupError, match="no event"):
        store.unblock("4242", reason="ok")
    with pytest.raises(ValueError, match="reason"):
        store.unblock("1", reason="  ")


def test_verification_code_is_stored_hashed_and_works_once(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path))
    code = store.new_verification_code("Ops@Example.org")
    with sqlite3.connect(tmp_path / "state.db") as conn:
        stored = conn.execute("SELECT code_hash FROM verification_codes").fetchone()[0]
    assert code not in stored
    assert not store.is_verified("ops@example.org")
    assert store.confirm_code(code) == "ops@example.org"
    assert store.is_verified("OPS@example.org")
    with pytest.raises(LookupError):
        store.confirm_code(code)


def test_expired_or_guessed_codes_do_not_verify(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path))
    expired = store.new_verification_code("a@example.org", ttl=-1)
    with pytest.raises(LookupError):
        store.confirm_code(expired)
    code = store.new_verification_code("b@example.org")
    for guess in range(5):
        with pytest.raises(LookupError):
            store.confirm_code(f"{guess:08d}" if f"{guess:08d}" != code else "x")
    with pytest.raises(LookupError):  # too many wrong tries: the real code is dead too
        store.confirm_code(code)
    assert not store.is_verified("b@example.org")


WORKER = textwrap.dedent(
    """
    import sys, threading
    from safemedia.config import Config
    from safemedia.store import open_store
    sys.path.insert(0, sys.argv[3])
    from tests.store_support import match_detection

    store = open_store(Config.from_mapping({"store": sys.argv[1]}))
    name = sys.argv[2]
    errors = []

    def work(t):
        try:
            for i in range(25):
                store.record(match_detection(f"/{name}/{t}/{i}.jpg"))
                store.is_blocked(f"example.org/{name}/{t}/{i}.jpg")
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    print("\\n".join(errors))
    sys.exit(1 if errors else 0)
    """
)


def test_processes_and_threads_record_at_once_without_lock_errors(tmp_path: Path) -> None:
    config = store_config(tmp_path)
    open_store(config).close()
    here = str(Path(__file__).parent.parent)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, config.store, f"p{n}", here],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(4)
    ]
    outputs = [p.communicate(timeout=100)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    store = open_store(config)
    assert len(store.detections()) == 4 * 4 * 25
    assert len(store.blocked()) == 4 * 4 * 25
    assert store.is_blocked("example.org/p3/2/24.jpg")


def test_failed_sends_back_off_exponentially_up_to_the_cap(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path))
    store.record(match_detection())
    delays = []
    for _ in range(5):
        claim = store.outbox.claim(owner="me", window=0, lease=30, now=time.time() + 1e6)
        assert claim is not None
        assert not isinstance(claim, float)
        delays.append(
            store.outbox.mark_failed(claim.ids, owner="me", error="down", initial=1, cap=5)
        )
    assert delays == [1, 2, 4, 5, 5]
    assert store.outbox.status().pending == 1
    assert store.outbox.status().last_error == "down"


def test_memory_store_is_shared_by_threads_and_private_to_the_store() -> None:
    config = Config.from_mapping({"store": "memory:"})
    store, other = open_store(config), open_store(config)
    threads = [
        threading.Thread(target=store.record, args=(match_detection(f"/t/{n}.jpg"),))
        for n in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.blocked()) == 8
    assert other.blocked() == []
    assert store.label == "memory:"
