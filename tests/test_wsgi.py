"""The WSGI middleware, called in process the way a server calls it (PEP 3333).

The server side here is real WSGI: ``wsgiref``'s environ defaults and its ``FileWrapper``, and a
``start_response`` that records what a server would send. Real servers are in test_wsgi_server.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment
from wsgiref.util import FileWrapper, setup_testing_defaults

import pytest

from safemedia import Config
from safemedia.events import Action, Detection
from safemedia.runtime import Runtime
from safemedia.verdict import Reason
from safemedia.wsgi import SafeMediaMiddleware, request_target
from tests.recording import MemoryRecorder
from tests.standin_engine import StandInEngine
from tests.store_support import store_config
from tests.synthetic import jpeg, png

LISTED = jpeg(11)
CLEAN = png(12)
JPEG_TYPE = ("Content-Type", "image/jpeg")


class Server:
    """What a WSGI server receives from the middleware."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.written: list[bytes] = []
        self.calls = 0

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and self.written:
            raise exc_info[1].with_traceback(exc_info[2])
        self.calls += 1
        self.status, self.headers = status, headers
        return self.written.append

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[0] if values else None

    def run(self, app: Any, environ: WSGIEnvironment) -> bytes:
        result = app(environ, self.start_response)
        try:
            body = b"".join([*self.written, *result])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return body


class Closing:
    """An app's iterable that records whether it was closed and how far it was read."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = list(chunks)
        self.closed = False
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk

    def close(self) -> None:
        self.closed = True


def environ(path: str = "/media/a.jpg", method: str = "GET", **headers: str) -> WSGIEnvironment:
    env: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_HOST": "site.test"}
    for name, value in headers.items():
        env["HTTP_" + name.upper()] = value
    setup_testing_defaults(env)
    return env


class TableRecorder(MemoryRecorder):
    """A :class:`MemoryRecorder` that hands over its blocked URLs whole, as the store does
    (:class:`safemedia.lookups.SetSource`), so that the runtime knows which paths no blocked URL
    has and the middleware calls the app for them without planning the request first."""

    def __init__(self) -> None:
        super().__init__()
        self.changes = 0

    def record(self, detection: Detection) -> None:
        super().record(detection)
        self.changes += 1

    def change_count(self, table: str) -> int:
        assert table == "blocked_urls"
        return self.changes

    def key_set(self, table: str, limit: int) -> tuple[int, frozenset[str] | None]:
        assert table == "blocked_urls"
        return self.changes, frozenset(self.blocked)


def make(config: Config | None = None) -> tuple[Runtime, MemoryRecorder]:
    config = config or Config()
    recorder = TableRecorder()
    engine = StandInEngine(config, listed={hashlib.sha256(LISTED).hexdigest()})
    return Runtime(config, engine=engine, recorder=recorder), recorder


def chunks(body: bytes, size: int = 1000) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def eager(
    body: Iterable[bytes], headers: list[tuple[str, str]], status: str = "200 OK"
) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, headers)
        return body

    return app


def test_a_non_image_response_is_the_apps_own_iterable_untouched() -> None:
    runtime, _ = make()
    wrapper = FileWrapper(io.BytesIO(b"hello"))
    mw = SafeMediaMiddleware(eager(wrapper, [("Content-Type", "text/plain")]), runtime=runtime)
    result = mw(environ("/a.txt"), Server().start_response)
    assert result is wrapper


def test_a_non_image_write_goes_straight_to_the_server() -> None:
    runtime, _ = make()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/html")])
        write(b"<p>early</p>")
        assert server.written == [b"<p>early</p>"]
        return [b"<p>late</p>"]

    server = Server()
    body = server.run(SafeMediaMiddleware(app, runtime=runtime), environ("/page"))
    assert body == b"<p>early</p><p>late</p>"


def test_a_clean_image_passes_byte_identical_with_its_content_length() -> None:
    runtime, recorder = make()
    app_body = Closing(chunks(CLEAN))
    app = eager(app_body, [("Content-Type", "image/png"), ("Transfer-Encoding", "chunked")])
    server = Server()
    body = server.run(SafeMediaMiddleware(app, runtime=runtime), environ("/a.png"))
    assert body == CLEAN
    assert server.header("Content-Length") == str(len(CLEAN))
    assert server.header("Transfer-Encoding") is None
    assert app_body.closed
    assert recorder.detections == []


def test_headers_the_app_changes_while_its_image_is_held_are_not_sent() -> None:
    runtime, _ = make()
    headers = [("Content-Type", "image/png")]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", headers)
        for chunk in chunks(CLEAN):
            yield chunk
            headers.append(("X-Late", "1"))  # after the first chunk: a server has sent them

    server = Server()
    body = server.run(SafeMediaMiddleware(app, runtime=runtime), environ("/a.png"))
    assert body == CLEAN
    assert server.header("Content-Type") == "image/png"
    assert server.header("X-Late") is None


def test_a_non_image_response_goes_to_the_server_with_the_apps_own_header_list() -> None:
    runtime, _ = make()
    headers = [("Content-Type", "text/plain"), ("Content-Length", "5")]
    server = Server()
    body = server.run(SafeMediaMiddleware(eager([b"hello"], headers), runtime=runtime), environ())
    assert body == b"hello"
    assert server.headers is headers


def test_a_listed_image_is_blocked_with_none_of_its_headers() -> None:
    runtime, recorder = make()
    app_body = Closing(chunks(LISTED))
    headers = [JPEG_TYPE, ("ETag", '"v1"'), ("Content-Length", str(len(LISTED)))]
    headers.append(("Set-Cookie", "session=1"))
    server = Server()
    body = server.run(
        SafeMediaMiddleware(eager(app_body, headers), runtime=runtime), environ("/a.jpg")
    )
    assert server.status.startswith("451 ")
    assert server.header("Cache-Control") == "no-store"
    assert {n.lower() for n, _ in server.headers}.isdisjoint({"etag", "set-cookie"})
    assert server.header("Content-Length") == str(len(body))
    assert LISTED not in body
    assert app_body.closed
    [detection] = recorder.detections
    assert detection.action is Action.BLOCKED
    assert detection.url == "site.test/a.jpg"


def test_a_blocked_url_is_refused_before_the_app_is_called() -> None:
    runtime, recorder = make()
    calls: list[str] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        calls.append(environ["REQUEST_METHOD"])
        start_response("200 OK", [JPEG_TYPE])
        return [LISTED]

    mw = SafeMediaMiddleware(app, runtime=runtime)
    Server().run(mw, environ("/a.jpg"))
    assert calls == ["GET"]
    for env in (environ("/a.jpg", "HEAD"), environ("/a.jpg", IF_NONE_MATCH='"v1"')):
        server = Server()
        body = server.run(mw, env)
        assert server.status.startswith("451 ")
        assert (body == b"") == (env["REQUEST_METHOD"] == "HEAD")
    assert calls == ["GET"]
    assert len(recorder.detections) == 1


def test_lazy_start_response_is_handled_for_images_and_others() -> None:
    runtime, _ = make()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        kind = environ["PATH_INFO"]
        start_response("200 OK", [("Content-Type", "image/png" if kind == "/i" else "text/csv")])
        yield from chunks(CLEAN if kind == "/i" else b"a,b\n" * 500)

    mw = SafeMediaMiddleware(app, runtime=runtime)
    server = Server()
    assert server.run(mw, environ("/i")) == CLEAN
    assert server.header("Content-Length") == str(len(CLEAN))
    server = Server()
    assert server.run(mw, environ("/t")) == b"a,b\n" * 500
    assert server.header("Content-Type") == "text/csv"


def test_an_image_written_with_write_is_buffered_and_checked() -> None:
    runtime, _ = make()
    leaked: list[bytes] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [JPEG_TYPE])
        for chunk in chunks(LISTED):
            write(chunk)
        leaked.extend(server.written)
        return []

    server = Server()
    body = server.run(SafeMediaMiddleware(app, runtime=runtime), environ())
    assert leaked == []
    assert server.status.startswith("451 ")
    assert LISTED not in body


def test_the_apps_iterable_is_closed_when_it_fails_mid_image() -> None:
    runtime, _ = make()
    app_body = Closing([CLEAN[:100]])

    def failing() -> Iterator[bytes]:
        yield from app_body
        raise OSError("disk gone")

    class Result:
        def __iter__(self) -> Iterator[bytes]:
            return failing()

        def close(self) -> None:
            app_body.close()

    mw = SafeMediaMiddleware(eager(Result(), [("Content-Type", "image/png")]), runtime=runtime)
    with pytest.raises(OSError, match="disk gone"):
        mw(environ(), Server().start_response)
    assert app_body.closed


def test_an_error_page_after_exc_info_replaces_a_buffered_image() -> None:
    runtime, _ = make()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "image/png")])
        write(CLEAN[:50])
        try:
            raise ValueError("broken")
        except ValueError:
            start_response(
                "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"error"]

    server = Server()
    assert server.run(SafeMediaMiddleware(app, runtime=runtime), environ()) == b"error"
    assert server.status.startswith("500 ")
    assert server.calls == 1


def test_a_second_start_response_without_exc_info_is_an_error() -> None:
    runtime, _ = make()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return []

    with pytest.raises(AssertionError):
        SafeMediaMiddleware(app, runtime=runtime)(environ(), Server().start_response)


def test_an_oversize_image_is_uninspectable_and_blocked_without_reading_it_all() -> None:
    runtime, recorder = make(Config(max_body_bytes=2000))
    app_body = Closing(chunks(LISTED + b"\0" * 10_000))
    server = Server()
    server.run(SafeMediaMiddleware(eager(app_body, [JPEG_TYPE]), runtime=runtime), environ())
    assert server.status.startswith("451 ")
    assert app_body.closed
    assert app_body.read < len(app_body.chunks)
    assert recorder.detections[0].verdict.reason is Reason.TOO_LARGE


def test_an_oversize_image_allowed_by_config_streams_through_unchanged() -> None:
    config = Config(max_body_bytes=2000, allow_uninspectable=frozenset({Reason.TOO_LARGE}))
    runtime, recorder = make(config)
    big = CLEAN + b"\0" * 10_000
    app_body = Closing(chunks(big))
    server = Server()
    body = server.run(
        SafeMediaMiddleware(eager(app_body, [("Content-Type", "image/png")]), runtime=runtime),
        environ(),
    )
    assert body == big
    assert server.status == "200 OK"
    assert app_body.closed
    assert recorder.detections[0].action is Action.ALLOWED


def test_a_206_image_is_uninspectable_and_its_body_never_read() -> None:
    runtime, recorder = make()
    app_body = Closing([LISTED[:100]])
    headers = [JPEG_TYPE, ("Content-Range", f"bytes 0-99/{len(LISTED)}")]
    mw = SafeMediaMiddleware(eager(app_body, headers, "206 Partial Content"), runtime=runtime)
    server = Server()
    server.run(mw, environ())
    assert server.status.startswith("451 ")
    assert server.header("Content-Range") is None
    assert app_body.read == 0
    assert app_body.closed
    assert recorder.detections[0].verdict.reason is Reason.PARTIAL_CONTENT


def test_a_gzip_encoded_image_is_scanned_and_passed_on_as_it_was() -> None:
    runtime, _ = make()
    headers = [JPEG_TYPE, ("Content-Encoding", "gzip")]
    for image, status in ((LISTED, "451 "), (CLEAN, "200 ")):
        encoded = gzip.compress(image)
        server = Server()
        body = server.run(
            SafeMediaMiddleware(eager(chunks(encoded), headers), runtime=runtime),
            environ(f"/{status.strip()}.jpg"),
        )
        assert server.status.startswith(status)
        if status == "200 ":
            assert body == encoded
            assert server.header("Content-Encoding") == "gzip"


def test_an_untyped_body_is_sniffed_images_checked_others_streamed() -> None:
    runtime, _ = make()
    octet = [("Content-Type", "application/octet-stream")]
    server = Server()
    server.run(SafeMediaMiddleware(eager(chunks(LISTED, 7), octet), runtime=runtime), environ())
    assert server.status.startswith("451 ")
    data = b"PK\x03\x04" + b"zip" * 5000
    app_body = Closing(chunks(data, 10))
    server = Server()
    result = SafeMediaMiddleware(eager(app_body, octet), runtime=runtime)(
        environ("/a.zip"), server.start_response
    )
    assert server.status == "200 OK"
    assert app_body.read < len(app_body.chunks)
    assert b"".join(result) == data
    getattr(result, "close")()  # noqa: B009
    assert app_body.closed


def test_range_and_stale_validators_never_reach_the_app() -> None:
    runtime, _ = make()
    seen: dict[str, Any] = {}

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "image/png"), ("ETag", '"v1"')])
        return [CLEAN]

    mw = SafeMediaMiddleware(app, runtime=runtime)
    server = Server()
    server.run(mw, environ("/a.png", RANGE="bytes=0-10", IF_RANGE='"v1"', IF_NONE_MATCH='"v1"'))
    assert not {"HTTP_RANGE", "HTTP_IF_RANGE", "HTTP_IF_NONE_MATCH"} & seen.keys()
    assert server.status == "200 OK"
    tagged = server.header("ETag")
    assert tagged is not None
    assert tagged != '"v1"'
    seen.clear()
    server = Server()
    server.run(mw, environ("/a.png", IF_NONE_MATCH=tagged))
    assert seen["HTTP_IF_NONE_MATCH"] == '"v1"'


def test_request_target_reads_host_path_and_query() -> None:
    env = environ("/caf\xc3\xa9.jpg")
    env["SCRIPT_NAME"], env["QUERY_STRING"] = "/app", "w=10"
    assert request_target(env) == ("GET", "site.test", "/app/café.jpg", "w=10")
    del env["HTTP_HOST"]
    env["SERVER_NAME"], env["SERVER_PORT"] = "example.org", "8080"
    assert request_target(env)[1] == "example.org:8080"


def test_response_headers_it_cannot_read_fail_closed() -> None:
    runtime, recorder = make()
    app = eager([CLEAN], [("Content-Type", "image/png"), ("X-Name", "caf\u00e9\u2615")])
    server = Server()
    server.run(SafeMediaMiddleware(app, runtime=runtime), environ("/odd.png"))
    assert server.status.startswith("451 ")
    assert recorder.detections[0].verdict.reason is Reason.UNDECODABLE


def test_an_image_labelled_as_text_is_still_checked() -> None:
    runtime, recorder = make()
    for body in (chunks(LISTED), FileWrapper(io.BytesIO(LISTED))):
        server = Server()
        app = eager(body, [("Content-Type", "text/html; charset=utf-8")])
        server.run(SafeMediaMiddleware(app, runtime=runtime), environ("/page"))
        assert server.status.startswith("451 ")
    assert recorder.detections[0].verdict.is_match


def test_a_labelled_text_stream_is_not_held_past_its_first_chunk() -> None:
    runtime, _ = make()
    app_body = Closing([b"<!doctype html>", b"<p>rest</p>"])
    server = Server()
    app = eager(app_body, [("Content-Type", "text/html")])
    result = SafeMediaMiddleware(app, runtime=runtime)(environ("/page"), server.start_response)
    assert server.status == "200 OK"
    assert app_body.read == 1
    assert b"".join(result) == b"<!doctype html><p>rest</p>"


def block_in_another_process(config: Config, host: str, path: str, query: str) -> None:
    """Record a blocked detection for the URL in ``config``'s store, from another process (as
    another worker of the site would)."""
    script = (
        "import sys\n"
        "from safemedia.config import Config\n"
        "from safemedia.store import open_store\n"
        "from tests.store_support import match_detection\n"
        "config = Config.from_mapping({'store': sys.argv[1]})\n"
        "store = open_store(config, quiet=True)\n"
        "store.record(match_detection(sys.argv[3], host=sys.argv[2], query=sys.argv[4]))\n"
        "store.close()\n"
    )
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-c", script, config.store, host, path, query]
    subprocess.run(command, check=True, cwd=root, timeout=60)


def test_a_url_another_process_blocks_in_the_store_is_refused_without_calling_the_app(
    tmp_path: Path,
) -> None:
    config = store_config(tmp_path)
    engine = StandInEngine(config, listed=set())
    runtime = Runtime(config, engine=engine, blocked_cache_seconds=0)  # the store every time
    calls: list[tuple[str, str]] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        calls.append((environ["PATH_INFO"], environ["QUERY_STRING"]))
        start_response("200 OK", [("Content-Type", "image/png")])
        return [CLEAN]

    def get(path: str, query: str, method: str = "GET") -> Server:
        env = environ(path.encode().decode("latin-1"), method)  # PEP 3333: UTF-8 read as latin-1
        env["QUERY_STRING"] = query
        server = Server()
        server.run(SafeMediaMiddleware(app, runtime=runtime), env)
        return server

    try:
        for path in ("/m/café ☕.jpg", "/m/plain.jpg"):
            assert get(path, "v=2").status == "200 OK"
            block_in_another_process(config, "Site.Test", path, "v=2")
            calls.clear()
            assert get(path, "v=2").status.startswith("451 ")
            assert get(path, "v=2", "HEAD").status.startswith("451 ")
            assert calls == []
            assert get(path, "v=3").status == "200 OK"  # the same path, another URL
            assert get(path, "").status == "200 OK"
            assert len(calls) == 2
    finally:
        runtime.close()


def test_an_image_found_after_the_app_ran_is_recorded_with_the_url_as_requested() -> None:
    runtime, recorder = make(Config(record_client_address=True))
    calls: list[str] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        calls.append(environ["PATH_INFO"])
        # what a proxy fix or a dispatcher inside the site may do to the environ
        environ.update(HTTP_HOST="inner.test", PATH_INFO="/x", QUERY_STRING="", REMOTE_ADDR="::1")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [LISTED]  # a page, it says: image bytes

    mw = SafeMediaMiddleware(app, runtime=runtime)
    env = environ("/p/caf\xc3\xa9.jpg")
    env.update(SCRIPT_NAME="/app", QUERY_STRING="w=10&h=5", REMOTE_ADDR="203.0.113.9")
    server = Server()
    server.run(mw, dict(env))
    assert server.status.startswith("451 ")
    [detection] = recorder.detections
    assert (detection.method, detection.host, detection.path, detection.query) == (
        "GET",
        "site.test",
        "/app/p/café.jpg",
        "w=10&h=5",
    )
    assert detection.client == "203.0.113.9"
    server = Server()
    server.run(mw, dict(env))  # now blocked: refused before the app
    assert server.status.startswith("451 ")
    assert calls == ["/p/caf\xc3\xa9.jpg"]


def test_a_non_image_passes_with_no_plan_made_and_an_image_is_planned_when_held() -> None:
    runtime, _ = make()
    planned: list[str] = []
    plan_request = runtime.plan_request

    def counting(*args: Any, **kwargs: Any) -> Any:
        planned.append(args[2])
        return plan_request(*args, **kwargs)

    runtime.plan_request = counting  # type: ignore[method-assign]  # a spy: the real one runs
    app = eager([b"<p>hello</p>"], [("Content-Type", "text/html")])
    assert Server().run(SafeMediaMiddleware(app, runtime=runtime), environ("/page")) == (
        b"<p>hello</p>"
    )
    assert planned == []
    image = eager([CLEAN], [("Content-Type", "image/png")])
    assert Server().run(SafeMediaMiddleware(image, runtime=runtime), environ("/i.png")) == CLEAN
    assert planned == ["/i.png"]
