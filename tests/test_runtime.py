"""The shared runtime: scanning, recording before the block reply, hooks."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import threading
from pathlib import Path

import pytest

from safemedia import Config, ConfigError
from safemedia.events import Action, Detection
from safemedia.http import Headers, plan_response
from safemedia.runtime import Runtime
from safemedia.store import open_store
from safemedia.verdict import Reason
from tests.listed import with_list
from tests.recording import MemoryRecorder
from tests.synthetic import jpeg

LISTED = jpeg(1)
CLEAN = jpeg(2)
IMAGE: Headers = [(b"content-type", b"image/jpeg")]


def make(config: Config | None = None, **kwargs: object) -> tuple[Runtime, MemoryRecorder]:
    config = config or Config()
    recorder = MemoryRecorder()
    return Runtime(with_list(config, LISTED), recorder=recorder, **kwargs), recorder  # type: ignore[arg-type]


def conclude(runtime: Runtime, body: bytes, headers: Headers = IMAGE):  # type: ignore[no-untyped-def]
    rq = runtime.plan_request("GET", "h", "/p.jpg", "", [])
    rp = plan_response(rq, 200, headers, runtime.config)
    return runtime.conclude(rq, rp, 200, headers, body)


def test_a_match_is_recorded_before_the_block_reply_is_returned() -> None:
    runtime, recorder = make()
    reply = conclude(runtime, LISTED)
    assert reply.blocked
    assert reply.status == 451
    [detection] = recorder.detections
    assert detection.action is Action.BLOCKED
    assert detection.url == "h/p.jpg"
    assert detection.md5 == hashlib.md5(LISTED).hexdigest()
    assert recorder.is_blocked("h/p.jpg")
    assert runtime.plan_request("HEAD", "H", "/p.jpg", "", []).blocked


def test_a_clean_image_passes_byte_identical_and_is_not_recorded() -> None:
    runtime, recorder = make()
    reply = conclude(runtime, CLEAN)
    assert (reply.status, reply.body, reply.blocked) == (200, CLEAN, False)
    assert recorder.detections == []


def test_uninspectable_is_blocked_unless_its_reason_is_allowed() -> None:
    runtime, recorder = make()
    assert conclude(runtime, b"\xff\xd8\xffnot really").blocked
    allowed = frozenset({Reason.UNDECODABLE, Reason.TRUNCATED})
    allowing, recorder2 = make(Config(allow_uninspectable=allowed))
    assert not conclude(allowing, b"\xff\xd8\xffnot really").blocked
    assert [d.action for d in recorder.detections + recorder2.detections] == [
        Action.BLOCKED,
        Action.ALLOWED,
    ]


def test_on_detection_hook_runs_after_commit_and_its_failure_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Detection] = []
    done = threading.Event()

    def hook(detection: Detection) -> None:
        seen.append(detection)
        done.set()
        raise RuntimeError("hook broke")

    runtime, recorder = make(on_detection=hook)
    with caplog.at_level(logging.ERROR, logger="safemedia"):
        assert conclude(runtime, LISTED).blocked
        assert done.wait(5)
        runtime.close()
    assert seen == recorder.detections
    assert "on_detection hook" in caplog.text


def test_a_bad_on_detection_path_stops_start_up_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="on_detection"):
        make(Config(on_detection="no.such.module:hook"))


def test_without_a_recorder_the_runtime_records_into_the_durable_store(tmp_path: Path) -> None:
    config = Config(store=f"sqlite:///{tmp_path / 'state.db'}")
    runtime = Runtime(with_list(config, LISTED))
    try:
        assert conclude(runtime, LISTED).blocked
        assert runtime.plan_request("GET", "h", "/p.jpg", "", []).blocked
    finally:
        runtime.close()
    store = open_store(config)
    try:
        assert [d.url for d in store.detections()] == ["h/p.jpg"]
    finally:
        store.close()


def test_a_runtime_used_before_a_fork_still_runs_work_in_the_child() -> None:
    runtime, _ = make()
    assert asyncio.run(runtime.run_blocking(lambda: 1)) == 1  # the pool's threads now exist
    pid = os.fork()
    if pid == 0:  # the child: a preloading server's worker
        signal.alarm(10)
        ok = asyncio.run(runtime.run_blocking(lambda: 2)) == 2
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
