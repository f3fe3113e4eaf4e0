"""The store's blocked URLs and allow-list kept in memory: fresh when the store changes, never a
query per request."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safemedia import lookups
from safemedia.events import url_key, url_paths
from safemedia.lookups import CachedAnswers, StoreSet, store_set
from safemedia.store import Store, open_store
from safemedia.store.store import SetTable
from tests.recording import MemoryRecorder
from tests.store_support import match_detection, store_config


def blocked_set(source: Store | CountingStore, ttl: float) -> StoreSet:
    return StoreSet(source, "blocked_urls", source.is_blocked, ttl)


class CountingStore:
    """A real store whose reads are counted (it forwards every call)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.per_url = 0
        self.set_reads = 0
        self.version_reads = 0

    def is_blocked(self, url: str) -> bool:
        self.per_url += 1
        return self.store.is_blocked(url)

    def change_count(self, table: SetTable) -> int:
        self.version_reads += 1
        return self.store.change_count(table)

    def key_set(self, table: SetTable, limit: int) -> tuple[int, frozenset[str] | None]:
        self.set_reads += 1
        return self.store.key_set(table, limit)


def test_unseen_urls_are_answered_from_memory_without_a_query_each(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path), quiet=True)
    store.record(match_detection("/u/listed.jpg"))
    counting = CountingStore(store)
    blocked = blocked_set(counting, 60.0)
    answers = [blocked(f"example.org/t/{n}") for n in range(1000)]
    assert not any(answers)
    assert blocked("example.org/u/listed.jpg")
    assert counting.per_url == 0
    assert counting.set_reads == 1


def test_a_block_recorded_by_another_process_is_seen_once_the_cache_time_passes(
    tmp_path: Path,
) -> None:
    config = store_config(tmp_path)
    here, other = open_store(config, quiet=True), open_store(config, quiet=True)
    blocked = blocked_set(here, 0.05)
    assert not blocked("example.org/u/1.jpg")
    other.record(match_detection("/u/1.jpg"))
    time.sleep(0.06)
    assert blocked("example.org/u/1.jpg")


def test_an_operators_unblock_applies_and_unchanged_sets_are_not_read_again(
    tmp_path: Path,
) -> None:
    config = store_config(tmp_path)
    store = open_store(config, quiet=True)
    store.record(match_detection("/u/1.jpg"))
    counting = CountingStore(open_store(config, quiet=True))
    blocked = blocked_set(counting, 0)
    assert blocked("example.org/u/1.jpg")
    assert blocked("example.org/u/1.jpg")
    assert counting.set_reads == 1  # the change count did not move: the set is not read again
    store.unblock("example.org/u/1.jpg", reason="reviewed: a false positive", actor="test")
    assert not blocked("example.org/u/1.jpg")
    assert counting.set_reads == 2


def test_a_block_this_process_records_is_seen_at_once(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path), quiet=True)
    blocked = blocked_set(store, 3600.0)
    assert not blocked("example.org/u/1.jpg")
    store.record(match_detection("/u/1.jpg"))
    blocked.forget("example.org/u/1.jpg")
    assert blocked("example.org/u/1.jpg")


def test_more_blocked_urls_than_fit_in_memory_are_checked_per_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookups, "CACHE_SIZE", 3)
    store = open_store(store_config(tmp_path), quiet=True)
    for n in range(5):
        store.record(match_detection(f"/u/{n}.jpg"))
    counting = CountingStore(store)
    blocked = blocked_set(counting, 0)
    assert blocked("example.org/u/4.jpg")
    assert not blocked("example.org/u/9.jpg")
    assert counting.per_url == 2
    assert counting.set_reads == 1  # and not re-read while nothing changes


def test_a_store_that_fails_answers_not_blocked_and_the_body_is_still_scanned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(store_config(tmp_path), quiet=True)
    store.record(match_detection("/u/1.jpg"))
    blocked = blocked_set(store, 0)
    store.close()
    assert blocked("example.org/u/1.jpg") is False
    assert "could not read blocked_urls" in caplog.text


def test_a_recorder_without_sets_is_asked_per_url() -> None:
    recorder = MemoryRecorder()
    assert isinstance(store_set(recorder, "blocked_urls", recorder.is_blocked, 1.0), CachedAnswers)


def test_an_allow_listing_by_another_process_is_seen_from_memory(tmp_path: Path) -> None:
    config = store_config(tmp_path)
    here, operator = open_store(config, quiet=True), open_store(config, quiet=True)
    operator.record(match_detection("/u/1.jpg", sha256="ab" * 32))
    allowed = StoreSet(here, "allowed_sha256", here.is_allowed, ttl=0)
    assert not allowed("ab" * 32)
    operator.unblock("example.org/u/1.jpg", reason="reviewed: harmless", actor="test")
    assert allowed("ab" * 32)
    assert not allowed("cd" * 32)


def test_a_path_no_blocked_url_has_is_ruled_out_from_memory(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path), quiet=True)
    store.record(match_detection("/u/listed.jpg"))
    store.record(match_detection("/q/a?b", query="size=2"))  # a decoded path holding a "?"
    counting = CountingStore(store)
    blocked = StoreSet(counting, "blocked_urls", counting.is_blocked, 60.0, index=url_paths)
    assert not blocked.might_contain("/u/other.jpg")
    assert not blocked.might_contain("/q/a?c")
    assert blocked.might_contain("/u/listed.jpg")
    assert blocked.might_contain("/q/a?b")
    assert blocked.might_contain("/q/a")  # the same key, were "?b" the start of the query
    assert counting.per_url == 0
    assert counting.set_reads == 1


def test_a_block_made_elsewhere_lets_its_path_through_the_filter_after_the_cache_time(
    tmp_path: Path,
) -> None:
    config = store_config(tmp_path)
    here = open_store(config, quiet=True)
    elsewhere = open_store(config, quiet=True)
    blocked = StoreSet(here, "blocked_urls", here.is_blocked, 0.2, index=url_paths)
    assert not blocked.might_contain("/u/late.jpg")
    elsewhere.record(match_detection("/u/late.jpg"))
    deadline = time.monotonic() + 5
    while not blocked.might_contain("/u/late.jpg"):
        assert time.monotonic() < deadline, "the other process's block was never seen"
        time.sleep(0.05)
    assert blocked("example.org/u/late.jpg")


def test_without_a_whole_table_in_memory_no_path_is_ruled_out(tmp_path: Path) -> None:
    assert CachedAnswers(lambda key: False, 1.0, "asking", default=False).might_contain("/x")
    store = open_store(store_config(tmp_path), quiet=True)
    unindexed = StoreSet(store, "blocked_urls", store.is_blocked, 60.0)
    assert unindexed.might_contain("/anything")


@settings(max_examples=300, deadline=None)
@given(
    host=st.text(max_size=12),
    path=st.text(max_size=20).map(lambda p: "/" + p),
    query=st.text(max_size=12),
)
def test_every_request_path_is_among_the_paths_of_its_own_url_key(
    host: str, path: str, query: str
) -> None:
    assert path in url_paths(url_key(host, path, query))


def test_a_slash_in_a_bogus_host_cannot_move_where_the_path_starts() -> None:
    key = url_key("Evil/x", "/img.jpg")
    assert key == "evil%2Fx/img.jpg"
    assert url_paths(key) == ("/img.jpg",)
