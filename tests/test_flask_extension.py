"""The Flask extension: set-up styles, where its state lives, where its config comes from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
import werkzeug.wrappers.response as werkzeug_response
from flask import Flask, Response
from werkzeug.test import EnvironBuilder
from werkzeug.wsgi import ClosingIterator

from safemedia import Config, ConfigError, wsgi
from safemedia.contrib import config_from_setting
from safemedia.contrib.flask import SafeMedia
from safemedia.runtime import Runtime
from safemedia.wsgi import SafeMediaMiddleware
from tests.recording import MemoryRecorder
from tests.standin_engine import StandInEngine
from tests.synthetic import jpeg, png

LISTED = jpeg(40)
CLEAN = png(41)


def runtime() -> Runtime:
    config = Config()
    engine = StandInEngine(config, listed={hashlib.sha256(LISTED).hexdigest()})
    return Runtime(config, engine=engine, recorder=MemoryRecorder())


def image_app() -> Flask:
    app = Flask(__name__)

    @app.get("/a.jpg")
    def image() -> tuple[bytes, int, dict[str, str]]:
        return LISTED, 200, {"Content-Type": "image/jpeg"}

    return app


def test_safemedia_app_wraps_wsgi_app_and_keeps_its_state_in_extensions() -> None:
    app = image_app()
    ext = SafeMedia(app, runtime=runtime())
    assert isinstance(app.wsgi_app, SafeMediaMiddleware)
    assert app.extensions["safemedia"] is app.wsgi_app
    assert SafeMedia.middleware(app) is app.wsgi_app
    assert not hasattr(ext, "app")
    response = app.test_client().get("/a.jpg")
    assert response.status_code == 451
    assert response.headers["Cache-Control"] == "no-store"


def test_one_extension_in_a_factory_serves_several_apps() -> None:
    shared = runtime()
    ext = SafeMedia(runtime=shared)
    apps = [image_app(), image_app()]
    for app in apps:
        ext.init_app(app)
    assert SafeMedia.middleware(apps[0]) is not SafeMedia.middleware(apps[1])
    assert all(SafeMedia.middleware(app).runtime is shared for app in apps)


def test_setting_it_up_twice_on_one_app_is_an_error() -> None:
    app = image_app()
    SafeMedia(app, runtime=runtime())
    with pytest.raises(RuntimeError, match="already"):
        SafeMedia(app, runtime=runtime())


def test_settings_take_a_dict_a_path_or_a_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config_from_setting({"max_body_bytes": 1234}).max_body_bytes == 1234
    toml = tmp_path / "sm.toml"
    toml.write_text("[safemedia]\nmax_body_bytes = 99\n")
    assert config_from_setting(str(toml)).max_body_bytes == 99
    assert config_from_setting(toml).max_body_bytes == 99
    config = Config(max_body_bytes=5)
    assert config_from_setting(config) is config
    monkeypatch.setenv("SAFEMEDIA_MAX_BODY_BYTES", "77")
    assert config_from_setting({"max_body_bytes": 1234}).max_body_bytes == 77
    monkeypatch.setenv("SAFEMEDIA_CONFIG", str(toml))
    assert config_from_setting(None).max_body_bytes == 77


def test_a_bad_setting_names_the_setting_and_the_key() -> None:
    with pytest.raises(ConfigError, match=r"SAFEMEDIA: .*max_body_bytes"):
        config_from_setting({"max_body_bytes": "lots"})
    with pytest.raises(ConfigError, match=r"SAFEMEDIA: unknown key 'colour'"):
        config_from_setting({"colour": "red"})
    with pytest.raises(ConfigError, match="expected a dict"):
        config_from_setting(42)


def labelled_app() -> Flask:
    """Routes whose bodies are labelled as text, whatever they hold."""
    app = Flask(__name__)

    @app.get("/page")
    def page() -> str:
        return "<p>hello</p>"

    @app.get("/words")
    def words() -> Response:
        return Response(["\u00e9t\u00e9", " ok"], mimetype="text/plain")

    @app.get("/listed")
    def listed() -> Response:
        return Response(LISTED, mimetype="text/html")

    @app.get("/listed-stream")
    def listed_stream() -> Response:
        return Response(iter([LISTED[:7], LISTED[7:]]), mimetype="text/html")

    @app.get("/clean")
    def clean() -> Response:
        return Response([CLEAN[:5], CLEAN[5:]], mimetype="text/plain")

    return app


def test_a_flask_page_reaches_the_server_as_flasks_own_unread_iterable() -> None:
    app = labelled_app()
    returned: list[Iterable[bytes]] = []
    inner = app.wsgi_app

    def spy(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        returned.append(inner(environ, start_response))
        return returned[-1]

    app.wsgi_app = spy  # type: ignore[method-assign]
    SafeMedia(app, runtime=runtime())
    started: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append(status)
        return None

    result = app.wsgi_app(EnvironBuilder(path="/page").get_environ(), start_response)
    assert result is returned[0]
    assert started == ["200 OK"]
    assert b"".join(result) == b"<p>hello</p>"
    closing: Any = result
    closing.close()


@pytest.mark.parametrize("reader", ["referents", "frame"])
def test_flask_bodies_labelled_as_text_are_checked_whether_listed_or_streamed(
    reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # werkzeug's body list is read from its unstarted generator either way: the generator's
    # referents (CPython, checked by a probe when werkzeug is first seen) or its frame's locals
    wsgi._find_werkzeug_encoder()
    if reader == "frame":
        monkeypatch.setattr(wsgi, "_encoder_iterable", wsgi._frame_iterable)
    else:
        assert wsgi._encoder_iterable is wsgi._last_referent
    app = labelled_app()
    SafeMedia(app, runtime=runtime())
    client = app.test_client()
    assert client.get("/listed").status_code == 451
    assert client.get("/listed-stream").status_code == 451
    clean = client.get("/clean")
    assert (clean.status_code, clean.data) == (200, CLEAN)
    assert client.get("/words").data == "\u00e9t\u00e9 ok".encode()


def test_a_werkzeug_encoder_with_another_signature_is_read_from_its_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def encoder(iterable: Iterable[bytes], charset: str) -> Iterable[bytes]:  # werkzeug 2
        yield from iterable

    monkeypatch.setattr(werkzeug_response, "_iter_encoded", encoder)
    monkeypatch.setattr(wsgi, "_werkzeug_encoder", None)
    monkeypatch.setattr(wsgi, "_encoder_iterable", wsgi._frame_iterable)
    assert wsgi._find_werkzeug_encoder() is encoder.__code__
    assert wsgi._encoder_iterable is wsgi._frame_iterable
    body = [b"GIF89a", b"..."]
    wrapped = ClosingIterator(encoder(body, "utf-8"))
    assert wsgi._peek(wrapped) == b"GIF89a..."
