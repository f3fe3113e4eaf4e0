"""``http.response.pathsend`` over a real server: the Starlette test app under granian.

granian (an ASGI server written in Rust) advertises the ``http.response.pathsend`` extension, so
Starlette's ``FileResponse`` hands it a path instead of body messages. safemedia must read such a
file (bounded) and check it when it is an image, and pass the path message on untouched when not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.imageset import ImageSet, make_image_set
from tests.realserver import serve

GRANIAN = (
    "{python}",
    "-m",
    "granian",
    "--interface",
    "asgi",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
    "--workers",
    "1",
    "--no-ws",
    "--log-level",
    "warning",
    "tests.apps.granian_app:app",
)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> ImageSet:
    return make_image_set(tmp_path_factory.mktemp("granian"))


@pytest.fixture(scope="module")
def client(images: ImageSet) -> Iterator[httpx.Client]:
    with (
        serve(GRANIAN, env={"SMTEST_DIR": str(images.root)}) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        yield client


def sent(client: httpx.Client) -> dict[str, Any]:
    """The message types the app sent so far and the extensions granian advertised."""
    answer: dict[str, Any] = client.get("/_sent").json()
    return answer


def test_granian_advertises_pathsend_and_the_app_uses_it(client: httpx.Client) -> None:
    before = sent(client)["sent"].get("http.response.pathsend", 0)
    assert client.get("/file/clean.jpg").status_code == 200
    after = sent(client)
    assert "http.response.pathsend" in after["extensions"]
    assert after["sent"].get("http.response.pathsend", 0) == before + 1


def test_a_listed_image_sent_by_path_is_blocked(client: httpx.Client) -> None:
    for path in ("/file/listed.jpg", "/file/listed.png", "/static/listed.jpg"):
        response = client.get(path)
        assert response.status_code == 451, path
        assert response.headers["cache-control"] == "no-store"
        assert b"\xff\xd8" not in response.content


def test_a_clean_image_sent_by_path_arrives_byte_identical(
    client: httpx.Client, images: ImageSet
) -> None:
    for name in ("clean.jpg", "clean.png", "fresh.jpg"):
        response = client.get(f"/file/{name}")
        assert response.status_code == 200, name
        assert response.content == images.body(name)
        assert response.headers["content-length"] == str(len(images.body(name)))


def test_an_image_file_over_max_body_bytes_is_uninspectable(
    client: httpx.Client, images: ImageSet
) -> None:
    assert len(images.body("big.jpg")) > 500_000  # the test apps' max_body_bytes
    assert client.get("/file/big.jpg").status_code == 451


def test_an_image_sent_by_path_under_a_generic_name_is_sniffed_and_blocked(
    client: httpx.Client,
) -> None:
    assert client.get("/file/listed.bin").status_code == 451


def test_a_non_image_file_sent_by_path_passes_through_as_a_path(
    client: httpx.Client, images: ImageSet
) -> None:
    before = sent(client)["sent"].get("http.response.pathsend", 0)
    response = client.get("/file/notes.txt")
    assert response.status_code == 200
    assert response.content == images.body("notes.txt")
    assert sent(client)["sent"].get("http.response.pathsend", 0) == before + 1


def test_a_blocked_url_is_refused_before_granian_sends_the_file(client: httpx.Client) -> None:
    assert client.get("/static/listed.png").status_code == 451
    before = sent(client)["sent"].get("http.response.pathsend", 0)
    assert client.get("/static/listed.png").status_code == 451
    assert sent(client)["sent"].get("http.response.pathsend", 0) == before
