"""The real-server helper starts, serves and stops a subprocess server."""

from __future__ import annotations

import httpx
import pytest

from tests.realserver import ServerError, serve


def test_serve_yields_a_reachable_server_and_stops_it() -> None:
    with serve(["{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]) as server:
        assert httpx.get(server.url + "/").status_code == 200
    assert server.process.poll() is not None


def test_a_server_that_exits_raises_with_its_output() -> None:
    with (
        pytest.raises(ServerError, match="boom"),
        serve(["{python}", "-c", "import sys; print('boom'); sys.exit(3)"]),
    ):
        pass
