"""A failing store never lets a known image through and never stops the app: it is logged loudly."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from werkzeug.test import Client

from safemedia.config import Config
from safemedia.events import LoggingRecorder
from safemedia.runtime import Runtime
from safemedia.store import open_store
from safemedia.wsgi import SafeMediaMiddleware
from tests.imageset import make_image_set
from tests.standin_engine import StandInEngine
from tests.store_support import store_config

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment


def test_full_store_still_blocks_the_image_and_logs_the_store_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images = make_image_set(tmp_path / "site")
    config = store_config(tmp_path)
    open_store(config).close()
    full = open_store(config, pragmas=["PRAGMA max_page_count = 1"])
    runtime = Runtime(config, engine=StandInEngine(config, watch=images.list_path), recorder=full)
    body = images.body("listed.jpg")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "image/jpeg")])
        return [body]

    # A long query string makes the detection row need new pages in the full file.
    client = Client(SafeMediaMiddleware(app, runtime=runtime))
    with caplog.at_level(logging.ERROR):
        response = client.get("/u/listed.jpg?" + "x" * 100_000)
    assert response.status_code == 451
    assert "could not record a detection" in caplog.text
    assert "full" in caplog.text
    runtime.close()


def test_unopenable_store_starts_with_a_loud_error_and_a_logging_recorder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-folder").write_text("x")
    config = Config.from_mapping({"store": f"sqlite:///{tmp_path / 'not-a-folder' / 'state.db'}"})
    with caplog.at_level(logging.ERROR):
        runtime = Runtime(config, engine=StandInEngine(config))
    assert isinstance(runtime.recorder, LoggingRecorder)
    assert runtime.notifier is None
    assert "NOT kept across restarts" in caplog.text
    runtime.close()
