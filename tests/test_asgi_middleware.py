"""SafeMediaMiddleware in process, with raw ASGI messages: cases a real server cannot show."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import trio
from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from safemedia import Config
from safemedia.asgi import SafeMediaMiddleware
from safemedia.config import ListConfig
from safemedia.events import Action, Detection
from safemedia.runtime import LOOP_DIGEST_BYTES, HeldBody, Runtime
from safemedia.store import open_store
from safemedia.verdict import Reason, Verdict
from tests.asgi_driver import Message, Result, acall, call, http_scope
from tests.listed import with_list
from tests.recording import MemoryRecorder
from tests.store_support import match_detection, store_config
from tests.synthetic import jpeg, png

LISTED = jpeg(1)
CLEAN = png(2)
BIG_CLEAN = png(4) + bytes(range(256)) * (LOOP_DIGEST_BYTES // 64)  # clean, ~4x the limit
BIG_LISTED = LISTED + b"\0" * (3 * LOOP_DIGEST_BYTES)  # trailing bytes: still that JPEG


def runtime(config: Config | None = None, recorder: Any = None, **kwargs: Any) -> Runtime:
    config = with_list(config or Config(max_body_bytes=50_000), LISTED)
    return Runtime(config, recorder=recorder or MemoryRecorder(), **kwargs)


def raw_app(body: bytes, content_type: bytes = b"image/jpeg", chunks: int = 3) -> Any:
    """An ASGI app sending ``body`` in ``chunks`` more_body messages."""

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type)],
            }
        )
        step = max(1, len(body) // chunks)
        parts = [body[i : i + step] for i in range(0, len(body), step)]
        for i, part in enumerate(parts):
            await send(
                {"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1}
            )

    return app


def test_images_split_over_more_body_messages_are_buffered_and_checked() -> None:
    clean = call(SafeMediaMiddleware(raw_app(CLEAN, b"image/png"), runtime=runtime()), "/a")
    assert clean.status == 200
    assert clean.body == CLEAN
    assert len(clean.messages) == 2  # one start, one whole body
    listed = call(SafeMediaMiddleware(raw_app(LISTED), runtime=runtime()), "/b")
    assert listed.status == 451


def test_non_image_body_messages_are_passed_one_by_one() -> None:
    text = b"x" * 3000
    result = call(SafeMediaMiddleware(raw_app(text, b"text/plain"), runtime=runtime()), "/t")
    assert result.body == text
    assert len(result.messages) == 4


def test_pathsend_files_are_read_bounded_and_checked(tmp_path: Path) -> None:
    (tmp_path / "listed.jpg").write_bytes(LISTED)
    (tmp_path / "clean.png").write_bytes(CLEAN)
    (tmp_path / "notes.bin").write_bytes(b"plain bytes " * 100)

    async def serve_file(request: Any) -> FileResponse:
        return FileResponse(tmp_path / request.path_params["name"])

    app = SafeMediaMiddleware(Starlette(routes=[Route("/{name}", serve_file)]), runtime=runtime())
    pathsend: dict[str, Any] = {"http.response.pathsend": {}}
    assert call(app, "/listed.jpg", extensions=pathsend).status == 451
    clean = call(app, "/clean.png", extensions=pathsend)
    assert (clean.status, clean.body) == (200, CLEAN)
    other = call(app, "/notes.bin", extensions=pathsend)
    assert other.messages[-1] == {
        "type": "http.response.pathsend",
        "path": str(tmp_path / "notes.bin"),
    }


def test_lifespan_and_websocket_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        await send({"type": f"{scope['type']}.marker"})

    middleware = SafeMediaMiddleware(app, runtime=runtime())
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    for kind in ("lifespan", "websocket"):
        asyncio.run(middleware({"type": kind}, receive, send))
    assert seen == ["lifespan", "websocket"]
    assert [m["type"] for m in sent] == ["lifespan.marker", "websocket.marker"]


def test_the_detection_is_recorded_before_the_block_response_starts() -> None:
    order: list[str] = []

    class Recorder(MemoryRecorder):
        def record(self, detection: Detection) -> None:
            order.append("recorded")
            super().record(detection)

    async def send(message: Message) -> None:
        order.append(message["type"])

    async def receive() -> Message:
        return {"type": "http.request"}

    middleware = SafeMediaMiddleware(raw_app(LISTED), runtime=runtime(recorder=Recorder()))
    asyncio.run(middleware(http_scope("/x.jpg"), receive, send))
    assert order == ["recorded", "http.response.start", "http.response.body"]


def test_a_failing_recorder_still_blocks_and_does_not_crash_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(MemoryRecorder):
        def record(self, detection: Detection) -> None:
            raise OSError("disk full")

    result = call(SafeMediaMiddleware(raw_app(LISTED), runtime=runtime(recorder=Broken())), "/x")
    assert result.status == 451
    assert "could not record" in caplog.text


def test_an_engine_failure_fails_closed_for_images(caplog: pytest.LogCaptureFixture) -> None:
    rt = runtime()

    def explode(
        body: bytes, content_type: str | None = None, *, sha256: str | None = None
    ) -> Verdict:
        raise RuntimeError("engine bug")

    rt.engine.scan = explode  # type: ignore[method-assign]
    result = call(SafeMediaMiddleware(raw_app(CLEAN, b"image/png"), runtime=rt), "/x")
    assert result.status == 451
    assert "engine bug" in caplog.text
    text = call(SafeMediaMiddleware(raw_app(b"hi", b"text/plain"), runtime=rt), "/t")
    assert text.body == b"hi"


def test_oversize_image_passes_streamed_when_too_large_is_allowed() -> None:
    big = jpeg(3, (600, 400), quality=100)
    config = Config(max_body_bytes=10_000, allow_uninspectable=frozenset({Reason.TOO_LARGE}))
    rt = runtime(config)
    result = call(SafeMediaMiddleware(raw_app(big, chunks=20), runtime=rt), "/big.jpg")
    assert (result.status, result.body) == (200, big)
    assert isinstance(rt.recorder, MemoryRecorder)
    [event] = rt.recorder.detections
    assert (event.action, event.verdict.reason) == (Action.ALLOWED, Reason.TOO_LARGE)


def test_an_app_that_ends_an_image_body_early_gets_a_block() -> None:
    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"image/png")],
            }
        )
        await send({"type": "http.response.body", "body": CLEAN[:50], "more_body": True})

    assert call(SafeMediaMiddleware(app, runtime=runtime()), "/cut.png").status == 451


def test_a_text_response_the_app_leaves_unfinished_is_passed_on_not_blocked() -> None:
    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"", "more_body": True})

    result = call(SafeMediaMiddleware(app, runtime=runtime()), "/t.txt")
    assert (result.status, result.body) == (200, b"")


def test_a_blocked_url_is_refused_without_calling_the_app() -> None:
    calls: list[str] = []
    rt = runtime(blocked_cache_seconds=0)  # an unblock applies at once

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["method"])
        await raw_app(LISTED)(scope, receive, send)

    middleware = SafeMediaMiddleware(app, runtime=rt)
    assert call(middleware, "/p.jpg").status == 451
    for method in ("GET", "HEAD"):
        assert call(middleware, "/p.jpg", method).status == 451
    assert calls == ["GET"]
    assert isinstance(rt.recorder, MemoryRecorder)
    rt.recorder.unblock("testserver/p.jpg")
    assert call(middleware, "/p.jpg", "HEAD").status == 200  # HEAD passes its headers
    assert calls == ["GET", "HEAD"]


def test_block_status_and_body_are_configurable() -> None:
    rt = runtime(Config(block_status=403, block_body="<p>gone</p>"))
    result = call(SafeMediaMiddleware(raw_app(LISTED), runtime=rt), "/x.jpg")
    assert (result.status, result.body) == (403, b"<p>gone</p>")


def test_add_middleware_with_a_config_builds_engine_and_store() -> None:
    async def listed(request: Any) -> Response:
        return Response(LISTED, media_type="image/jpeg")

    async def clean(request: Any) -> Response:
        return Response(CLEAN, media_type="image/png")

    app = Starlette(routes=[Route("/x.jpg", listed), Route("/ok.png", clean)])
    app.add_middleware(SafeMediaMiddleware, config=with_list(Config(store="memory:"), LISTED))
    assert call(app, "/x.jpg").status == 451
    assert call(app, "/x.jpg", "HEAD").status == 451  # blocked in the store now
    assert call(app, "/ok.png").body == CLEAN


class CountingRuntime(Runtime):
    """The real runtime, counting its hops to worker threads and noting the digest each scan
    was handed (a spy: nothing is replaced)."""

    hops = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scanned_with: list[str | None] = []

    async def run_blocking(self, func: Any, *args: Any) -> Any:
        self.hops += 1
        return await super().run_blocking(func, *args)

    def scan(self, body: bytes, content_type: str | None = None, **kw: Any) -> Verdict:
        self.scanned_with.append(kw.get("sha256"))
        return super().scan(body, content_type, **kw)


def test_a_small_image_already_found_clean_is_answered_without_a_worker_thread() -> None:
    rt = CountingRuntime(with_list(Config(), LISTED), recorder=MemoryRecorder())
    app = SafeMediaMiddleware(raw_app(CLEAN, b"image/png", chunks=1), runtime=rt)
    first = call(app, "/a.png")
    assert rt.hops == 1
    second = call(app, "/b.png")
    assert rt.hops == 1
    assert (first.status, first.body) == (second.status, second.body) == (200, CLEAN)
    assert second.headers[b"etag"] == first.headers[b"etag"]
    assert second.headers[b"content-length"] == str(len(CLEAN)).encode()


@pytest.mark.parametrize(
    ("size", "chunks"),
    [("small", 1), ("large", 16), ("large", 1)],
    ids=["small-whole", "large-in-parts", "large-whole"],
)
def test_a_listed_image_is_checked_and_recorded_in_a_worker_thread_every_time(
    size: str, chunks: int
) -> None:
    body = LISTED if size == "small" else BIG_LISTED
    recorder = MemoryRecorder()
    rt = CountingRuntime(with_list(Config(), body), recorder=recorder)
    app = SafeMediaMiddleware(raw_app(body, chunks=chunks), runtime=rt)
    statuses = [call(app, f"/{i}.jpg").status for i in range(3)]
    assert statuses == [451, 451, 451]
    assert rt.hops == 3
    digest = hashlib.sha256(body).hexdigest()
    assert [d.verdict.sha256 for d in recorder.detections] == [digest] * 3
    assert rt.scanned_with == [digest] * 3  # one scan each, with the digest made on the loop


def served_twice_from_the_cache(chunks: int) -> tuple[Result, Result]:
    """BIG_CLEAN sent in ``chunks`` messages, twice: the first scanned in a worker thread, the
    second answered on the loop from the verdict cache (no worker hop), both whole and equal."""
    rt = CountingRuntime(with_list(Config(), LISTED), recorder=MemoryRecorder())
    app = SafeMediaMiddleware(raw_app(BIG_CLEAN, b"image/png", chunks=chunks), runtime=rt)
    first = call(app, "/1.png")
    assert rt.hops == 1  # new: scanned in a worker thread
    second = call(app, "/2.png")
    assert rt.hops == 1  # digested on the loop; the verdict was cached
    assert (first.status, first.body) == (second.status, second.body) == (200, BIG_CLEAN)
    assert second.headers[b"content-length"] == str(len(BIG_CLEAN)).encode()
    assert second.headers[b"etag"] == first.headers[b"etag"]
    return first, second


def test_a_large_image_found_clean_sent_whole_is_answered_without_a_worker_thread() -> None:
    served_twice_from_the_cache(chunks=1)  # digested in slices
    assert len(BIG_CLEAN) > 3 * LOOP_DIGEST_BYTES  # so more than one slice


def text_or_image_app(on_start: Callable[[], object] = lambda: None, parts: int = 1) -> Any:
    """``/text``: a text response; ``/listed.jpg``: BIG_LISTED; any other path: BIG_CLEAN in
    ``parts`` body messages, sent without a pause. ``on_start`` runs between an image's start
    and its body."""

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/text":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"hello"})
            return
        body = BIG_LISTED if scope["path"] == "/listed.jpg" else BIG_CLEAN
        headers = [(b"content-type", b"image/png")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        on_start()
        step = -(-len(body) // parts)
        for i in range(0, len(body), step):
            more = i + step < len(body)
            await send(
                {"type": "http.response.body", "body": body[i : i + step], "more_body": more}
            )

    return app


@pytest.mark.parametrize("parts", [1, 16], ids=["whole", "in-parts-sent-at-once"])
def test_other_requests_are_served_between_the_slices_of_a_large_body(parts: int) -> None:
    rt = CountingRuntime(with_list(Config(), LISTED), recorder=MemoryRecorder())
    wrapped = SafeMediaMiddleware(text_or_image_app(parts=parts), runtime=rt)
    assert call(wrapped, "/big.png").status == 200  # scanned: cached clean from now on
    finished: list[str] = []

    async def fetch(path: str) -> None:
        result = await acall(wrapped, http_scope(path))
        assert result.status == 200
        finished.append(path)

    async def both() -> None:  # the large one starts first
        await asyncio.gather(fetch("/big.png"), fetch("/text"))

    asyncio.run(both())
    assert finished == ["/text", "/big.png"]  # the loop was not held for the whole digest
    assert rt.hops == 1  # ... and no worker thread digested the large body


def test_under_trio_large_images_are_digested_in_slices_and_checked() -> None:
    sending = trio.Event()  # set as the image body is sent: no checkpoint until the
    # middleware yields while checking it
    rt = CountingRuntime(with_list(Config(), BIG_LISTED), recorder=MemoryRecorder())
    wrapped = SafeMediaMiddleware(text_or_image_app(lambda: sending.set()), runtime=rt)
    finished: list[tuple[str, int]] = []

    async def fetch(path: str) -> None:
        finished.append((path, (await acall(wrapped, http_scope(path))).status))

    async def text_once_the_large_one_is_sent() -> None:
        await sending.wait()
        await fetch("/text")

    async def run() -> None:
        nonlocal sending
        await fetch("/big.png")  # scanned (anyio's worker threads): cached clean from now on
        await fetch("/listed.jpg")
        sending = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(text_once_the_large_one_is_sent)
            nursery.start_soon(fetch, "/big.png")

    trio.run(run)
    assert finished == [("/big.png", 200), ("/listed.jpg", 451), ("/text", 200), ("/big.png", 200)]
    assert rt.hops == 2  # the first two scans; the cached one was digested on the loop


def test_the_loop_digest_goes_in_slices_of_at_most_the_limit() -> None:
    chunks = [b"a" * 10, b"b" * (3 * LOOP_DIGEST_BYTES + 7), b"c" * 100, b"d" * LOOP_DIGEST_BYTES]
    held = HeldBody()
    for chunk in chunks:
        held.add(chunk)
    assert held.fed == 10  # only the first small part on arrival
    steps = []
    while True:
        before = held.fed
        done = held.digest_step()
        steps.append(held.fed - before)
        if done:
            break
        if len(steps) == 2:
            held.value()  # joining the parts (for sniffing) keeps the place
    assert max(steps) <= LOOP_DIGEST_BYTES
    assert sum(steps) + 10 == len(b"".join(chunks)) == held.fed == held.size
    assert len(steps) == 5
    assert held.digest_so_far() == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert held.digest_step()  # nothing left: done at once
    assert held.digest() == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_a_large_image_sent_as_a_path_is_digested_in_the_thread_that_reads_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "big.png").write_bytes(BIG_CLEAN)

    async def serve_file(request: Any) -> FileResponse:
        return FileResponse(tmp_path / "big.png")

    rt = CountingRuntime(with_list(Config(), LISTED), recorder=MemoryRecorder())
    app = SafeMediaMiddleware(Starlette(routes=[Route("/big.png", serve_file)]), runtime=rt)
    pathsend: dict[str, Any] = {"http.response.pathsend": {}}
    first = call(app, "/big.png", extensions=pathsend)
    assert rt.hops == 2  # read (and digested), then scanned
    second = call(app, "/big.png", extensions=pathsend)
    assert rt.hops == 3  # read and digested in one hop, answered from the cache on the loop
    assert (first.status, first.body) == (second.status, second.body) == (200, BIG_CLEAN)


@pytest.mark.parametrize(
    ("size", "chunks"), [("small", 1), ("large", 16)], ids=["small-whole", "large-in-parts"]
)
def test_an_image_found_clean_is_checked_again_once_the_lists_change(
    tmp_path: Path, size: str, chunks: int
) -> None:
    body = CLEAN if size == "small" else BIG_CLEAN  # both answered on the loop while cached
    listed = tmp_path / "list.txt"
    listed.write_text(f"sha256 {hashlib.sha256(LISTED).hexdigest()} listed\n")
    config = Config(hash_lists=(ListConfig(path=listed, name="test"),), list_reload_interval=0.05)
    rt = CountingRuntime(config, recorder=MemoryRecorder())
    app = SafeMediaMiddleware(raw_app(body, b"image/png", chunks=chunks), runtime=rt)
    assert [call(app, f"/{i}.png").status for i in range(2)] == [200, 200]
    assert rt.hops == 1
    with listed.open("a") as f:
        f.write(f"sha256 {hashlib.sha256(body).hexdigest()} now-listed\n")
    deadline = time.monotonic() + 10
    status = 200
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.02)
        status = call(app, f"/later-{time.monotonic()}.png").status
    assert status == 451


def parts_app(parts: list[bytes], content_type: bytes = b"image/png") -> Any:
    """An ASGI app sending exactly ``parts``, one ``more_body`` message each."""

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": []}
        start["headers"] = [(b"content-type", content_type)]
        await send(start)
        for i, part in enumerate(parts):
            await send(
                {"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1}
            )

    return app


def test_a_large_image_found_clean_in_small_parts_is_answered_without_a_worker_thread() -> None:
    _, second = served_twice_from_the_cache(chunks=16)  # digested as its parts arrived
    bodies = [m for m in second.messages if m["type"] == "http.response.body"]
    assert len(bodies) >= 16  # the app's parts, not one joined copy
    assert [m.get("more_body", False) for m in bodies][-1] is False


def test_a_body_with_a_part_over_the_loop_digest_limit_is_answered_on_the_loop() -> None:
    over = bytes(range(256)) * (LOOP_DIGEST_BYTES // 256) + b"x"  # one byte over the limit
    body_parts = [png(5), b"", b"a" * 1000, over, b"b" * 1000, b"", b"c"]
    rt = CountingRuntime(with_list(Config(), LISTED), recorder=MemoryRecorder())
    app = SafeMediaMiddleware(parts_app(body_parts), runtime=rt)
    results = [call(app, f"/{i}.png") for i in range(2)]
    assert [(r.status, r.body) for r in results] == [(200, b"".join(body_parts))] * 2
    assert rt.hops == 1  # the second one was cached clean: the rest digested in loop slices


def test_a_gzip_encoded_image_in_small_parts_is_checked_in_a_worker_every_time() -> None:
    encoded = gzip.compress(BIG_CLEAN)
    step = len(encoded) // 8 + 1
    body_parts = [encoded[i : i + step] for i in range(0, len(encoded), step)]

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"image/png"), (b"content-encoding", b"gzip")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, part in enumerate(body_parts):
            more = i < len(body_parts) - 1
            await send({"type": "http.response.body", "body": part, "more_body": more})

    recorder = MemoryRecorder()
    rt = CountingRuntime(with_list(Config(), BIG_LISTED), recorder=recorder)
    wrapped = SafeMediaMiddleware(app, runtime=rt)
    results = [call(wrapped, f"/{i}.png") for i in range(2)]
    assert [(r.status, r.body) for r in results] == [(200, encoded)] * 2
    assert rt.hops == 2
    engine: Any = rt.engine  # the verdict is keyed by the digest of the decoded image
    assert engine.cached_verdict(hashlib.sha256(BIG_CLEAN).hexdigest()).is_clean
    assert engine.cached_verdict(hashlib.sha256(encoded).hexdigest()) is None


@pytest.mark.parametrize(
    "chunks",
    [
        [],
        [b""],
        [b"", b"abc", b"", b"def", b""],
        [b"x" * LOOP_DIGEST_BYTES, b"", b"y" * 10],
        [b"a", b"", b"z" * (LOOP_DIGEST_BYTES + 1), b"", b"b" * 7, b"c"],
        [bytearray(b"q" * 5000), memoryview(b"r" * 70_000), b""],
    ],
)
def test_the_digest_made_as_parts_arrive_is_the_sha256_of_the_whole_body(
    chunks: list[bytes],
) -> None:
    body = b"".join(chunks)
    held = HeldBody()
    for chunk in chunks:
        held.add(chunk)
    assert b"".join(held.chunks) == body
    so_far = held.digest_so_far()
    assert so_far in (None, hashlib.sha256(body).hexdigest())
    assert (so_far is None) == any(len(c) > LOOP_DIGEST_BYTES for c in chunks)
    assert held.digest() == hashlib.sha256(body).hexdigest()
    assert held.digest_so_far() == hashlib.sha256(body).hexdigest()


def test_the_digest_made_as_parts_arrive_is_counted_until_the_loop_turns() -> None:
    held = HeldBody()
    for chunk in (b"a" * 1000, b"", b"b" * LOOP_DIGEST_BYTES):
        held.add(chunk)
    assert held.step == held.fed == 1000 + LOOP_DIGEST_BYTES
    asyncio.run(held.turn())
    assert held.step == 0
    held.add(b"c" * 10)
    assert held.step == 10
    assert trio.run(held.turn) is None
    assert held.step == 0


def test_a_digest_on_the_loop_stops_when_its_request_is_cancelled() -> None:
    held = HeldBody()
    held.add(b"x" * (10 * LOOP_DIGEST_BYTES))

    async def cancel_midway() -> tuple[int, int]:
        task = asyncio.ensure_future(held.digest_on_loop())
        for _ in range(3):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        at_cancel = held.fed
        for _ in range(20):
            await asyncio.sleep(0)
        return at_cancel, held.fed

    at_cancel, later = asyncio.run(cancel_midway())
    assert 0 < at_cancel < held.size  # part way through ...
    assert later == at_cancel  # ... and no slice after it


def test_the_digest_survives_joining_the_held_parts_for_sniffing() -> None:
    held = HeldBody()
    for chunk in (b"a" * 10, b"b" * (LOOP_DIGEST_BYTES + 5)):
        held.add(chunk)
    assert held.value() == b"a" * 10 + b"b" * (LOOP_DIGEST_BYTES + 5)  # joined: one part now
    held.add(b"tail")
    assert held.digest() == hashlib.sha256(held.value()).hexdigest()


def test_a_listed_image_sent_in_many_parts_is_blocked() -> None:
    big = LISTED
    rt = CountingRuntime(with_list(Config(), LISTED), recorder=MemoryRecorder())
    app = SafeMediaMiddleware(raw_app(big, b"image/jpeg", chunks=7), runtime=rt)
    assert [call(app, f"/{i}.jpg").status for i in range(2)] == [451, 451]


def test_urls_blocked_in_the_store_are_refused_and_other_paths_are_served(
    tmp_path: Path,
) -> None:
    config = with_list(store_config(tmp_path, max_body_bytes=50_000), LISTED)
    elsewhere = open_store(config, quiet=True)  # another worker's block, in the shared store
    elsewhere.record(match_detection("/q/a?b", host="testserver", query="size=2"))
    calls: list[str] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        body = LISTED if scope["path"].startswith("/u/") else CLEAN
        await raw_app(body, b"image/png")(scope, receive, send)

    rt = Runtime(config)
    try:
        middleware = SafeMediaMiddleware(app, runtime=rt)
        blocked = http_scope("/q/a?size=2")
        blocked["path"] = "/q/a?b"  # a path holding a percent-encoded "?", decoded
        for method in ("GET", "HEAD"):
            blocked["method"] = method
            assert asyncio.run(acall(middleware, blocked)).status == 451
        assert calls == []
        other = call(middleware, "/q/a?size=2")  # another URL: served, checked
        assert (other.status, other.body) == (200, CLEAN)
        assert call(middleware, "/u/new.jpg?v=1").status == 451  # planned once it was an image
        assert call(middleware, "/u/new.jpg?v=1").status == 451
        assert calls == ["/q/a", "/u/new.jpg"]
        recorded = rt.recorder.detections()  # type: ignore[attr-defined]
        assert [(d.host, d.path, d.query) for d in recorded] == [
            ("testserver", "/q/a?b", "size=2"),  # the other worker's
            ("testserver", "/u/new.jpg", "v=1"),
        ]
    finally:
        rt.close()
