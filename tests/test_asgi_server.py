"""The HTTP contract over real HTTP: Starlette and FastAPI apps under uvicorn on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from safemedia.http import tag_etag
from tests.imageset import ImageSet, make_image_set
from tests.realserver import UVICORN, Server, serve

ORIGINAL_ONLY = ("etag", "last-modified", "content-range", "content-encoding", "accept-ranges")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> ImageSet:
    return make_image_set(tmp_path_factory.mktemp("asgi"))


def _serve(app: str, images: ImageSet) -> Iterator[Server]:
    with serve([*UVICORN, app], env={"SMTEST_DIR": str(images.root)}) as server:
        yield server


@pytest.fixture(scope="module")
def starlette(images: ImageSet) -> Iterator[httpx.Client]:
    for server in _serve("tests.apps.starlette_app:app", images):
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client


@pytest.fixture(scope="module")
def fastapi(images: ImageSet) -> Iterator[httpx.Client]:
    for server in _serve("tests.apps.fastapi_app:app", images):
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client


def detections(client: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/_detections").json()["detections"]
    return found


def wait_for_new_generation(client: httpx.Client, etag: str) -> None:
    """Until the server's lists generation differs from the one in ``etag`` (list reload)."""
    old = etag.rsplit("~sm", 1)[1].rstrip('"')
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if client.get("/_detections").json()["generation"] != old:
            return
        time.sleep(0.05)
    raise AssertionError("the server never picked up the changed list")


def assert_blocked(response: httpx.Response, head: bool = False) -> None:
    assert response.status_code == 451, response.headers
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    for name in ORIGINAL_ONLY:
        assert name not in response.headers, name
    if not head:
        assert b"Unavailable For Legal Reasons" in response.content
        assert int(response.headers["content-length"]) == len(response.content)


def test_non_image_responses_stream_through_unbuffered(starlette: httpx.Client) -> None:
    with starlette.stream("GET", "/gated") as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"first chunk\n"  # arrives while the app still holds the rest
        assert starlette.get("/release").text == "released"
        assert b"".join(chunks) == b"second chunk\n"
    assert starlette.get("/text").text == "hello"


def test_clean_image_is_sent_byte_identical_with_exact_length(
    starlette: httpx.Client, images: ImageSet
) -> None:
    for path in ("/static/clean.jpg", "/stream/clean.png", "/file/clean2.jpg"):
        response = starlette.get(path)
        name = path.rsplit("/", 1)[1]
        assert response.status_code == 200
        assert response.content == images.body(name)
        assert response.headers["content-length"] == str(len(response.content))
        assert "transfer-encoding" not in response.headers


def test_listed_image_gets_451_and_its_url_stays_blocked(
    starlette: httpx.Client, images: ImageSet
) -> None:
    assert_blocked(starlette.get("/static/listed.jpg"))
    [event] = [d for d in detections(starlette) if d["url"].endswith("/static/listed.jpg")]
    assert event["kind"] == "match"
    assert event["action"] == "blocked"
    assert event["md5"] == hashlib.md5(images.body("listed.jpg")).hexdigest()
    assert_blocked(starlette.head("/static/listed.jpg"), head=True)
    assert_blocked(starlette.get("/static/listed.jpg", headers={"if-none-match": '"x"'}))
    assert len([d for d in detections(starlette) if d["url"].endswith("listed.jpg")]) == 1


def test_streamed_and_file_responses_of_listed_images_are_blocked(starlette: httpx.Client) -> None:
    assert_blocked(starlette.get("/stream/listed.png"))
    assert_blocked(starlette.get("/file/listed.png?via=file"))


def test_range_request_cannot_fetch_an_unchecked_image(starlette: httpx.Client) -> None:
    assert_blocked(starlette.get("/static/listed.png", headers={"range": "bytes=0-"}))
    for ranges in ("bytes=0-", "bytes=0-99", "bytes=0-9, 20-29"):
        response = starlette.get("/static/clean.png", headers={"range": ranges, "if-range": '"x"'})
        assert response.status_code == 200
        assert "content-range" not in response.headers


def test_a_206_image_that_still_arrives_is_blocked_as_partial(starlette: httpx.Client) -> None:
    assert_blocked(starlette.get("/partial/clean.jpg"))
    reasons = [d["reason"] for d in detections(starlette) if "/partial/" in d["url"]]
    assert reasons == ["partial_content"]


def test_head_of_a_clean_image_passes_its_headers(
    starlette: httpx.Client, images: ImageSet
) -> None:
    response = starlette.head("/static/clean.jpg")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(images.body("clean.jpg")))
    assert response.content == b""


def test_304_only_for_a_verdict_against_the_lists_in_force(
    starlette: httpx.Client, images: ImageSet
) -> None:
    first = starlette.get("/static/later.jpg")
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    assert "~sm" in etag
    again = starlette.get("/static/later.jpg", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    images.add_to_list("later.jpg")  # the operator's list now holds it
    wait_for_new_generation(starlette, etag)
    assert_blocked(starlette.get("/static/later.jpg", headers={"if-none-match": etag}))


def test_an_untagged_validator_for_an_image_is_not_honoured(starlette: httpx.Client) -> None:
    plain = starlette.get("/static/clean.jpg").headers["etag"]
    original = plain.split("~sm")[0].removeprefix('W/"')
    response = starlette.get("/static/clean.jpg", headers={"if-none-match": f'"{original}"'})
    assert response.status_code == 200


def test_image_without_etag_revalidates_by_safemedia_own_tag(starlette: httpx.Client) -> None:
    first = starlette.get("/stream/clean.jpg")
    again = starlette.get("/stream/clean.jpg", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    stale = tag_etag(None, 10**6, first.headers["etag"].split("~")[1]).decode()
    assert starlette.get("/stream/clean.jpg", headers={"if-none-match": stale}).status_code == 200


def test_gzip_encoded_images_are_checked_and_passed_as_they_were(
    starlette: httpx.Client, images: ImageSet
) -> None:
    with starlette.stream("GET", "/stream/clean.png?encoding=gzip") as response:
        raw = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert gzip.decompress(raw) == images.body("clean.png")
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-length"] == str(len(raw))
    assert_blocked(starlette.get("/stream/listed.png?encoding=deflate"))


def test_an_unknown_encoding_is_uninspectable(starlette: httpx.Client) -> None:
    assert_blocked(starlette.get("/stream/clean.png?encoding=br"))
    reasons = {d["reason"] for d in detections(starlette) if "encoding=br" in d["url"]}
    assert reasons == {"unknown_encoding"}


def test_images_are_found_by_magic_bytes_when_the_type_says_nothing(
    starlette: httpx.Client, images: ImageSet
) -> None:
    assert_blocked(starlette.get("/stream/listed.bin?type=application/octet-stream"))
    assert_blocked(starlette.get("/stream/listed.bin"))  # no content-type at all
    text = starlette.get("/stream/notes.txt?type=application/octet-stream")
    assert text.content == images.body("notes.txt")


def test_image_bytes_under_a_text_label_are_checked(
    starlette: httpx.Client, images: ImageSet
) -> None:
    assert_blocked(starlette.get("/stream/listed.jpg?type=text/plain"))
    clean = starlette.get("/stream/clean.jpg?type=text/html")
    assert clean.content == images.body("clean.jpg")


def test_svg_is_not_a_raster_image_and_passes(starlette: httpx.Client, images: ImageSet) -> None:
    assert starlette.get("/static/picture.svg").content == images.body("picture.svg")


def test_oversize_and_undecodable_images_are_blocked_with_their_reason(
    starlette: httpx.Client,
) -> None:
    assert_blocked(starlette.get("/static/big.jpg"))
    assert_blocked(starlette.get("/stream/big.jpg"))  # no content-length: stops at the cap
    assert_blocked(starlette.get("/static/broken.jpg"))
    reasons = {d["url"].split("/", 1)[1]: d["reason"] for d in detections(starlette)}
    assert reasons["static/big.jpg"] == "too_large"
    assert reasons["stream/big.jpg"] == "too_large"
    assert reasons["static/broken.jpg"] in {"undecodable", "truncated"}


def test_fifty_concurrent_requests_for_one_uncached_image_scan_it_once(
    starlette: httpx.Client, images: ImageSet
) -> None:
    before = starlette.get("/_detections").json()["decodes"]
    url = str(starlette.base_url) + "/static/fresh.jpg"
    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(lambda _: httpx.get(url, timeout=30), range(50)))
    assert {r.status_code for r in responses} == {200}
    assert all(r.content == images.body("fresh.jpg") for r in responses)
    assert starlette.get("/_detections").json()["decodes"] == before + 1


def test_fastapi_app_with_add_middleware(fastapi: httpx.Client, images: ImageSet) -> None:
    assert fastapi.get("/hello").text == "hello"
    assert fastapi.get("/uploads/clean.jpg").content == images.body("clean.jpg")
    assert fastapi.get("/uploads/clean.jpg", headers={"range": "bytes=0-9"}).status_code == 200
    assert_blocked(fastapi.get("/uploads/listed.jpg"))
    assert_blocked(fastapi.head("/uploads/listed.jpg"), head=True)


def test_image_set_list_is_made_from_the_images(images: ImageSet) -> None:
    listed = images.list_path.read_text()
    assert hashlib.sha256(images.body("listed.jpg")).hexdigest() in listed
    assert isinstance(images.root, Path)
