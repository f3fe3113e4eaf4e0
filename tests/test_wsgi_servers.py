"""The HTTP contract over real HTTP for the WSGI side: Flask, Django and a plain WSGI app.

Each site runs once per module on a free 127.0.0.1 port: the Flask app (``send_from_directory``)
under gunicorn with sync and with gthread workers, the plain WSGI app (lazy ``start_response``,
``write()``, ``wsgi.file_wrapper``) under gunicorn, the Django project (WhiteNoise for
``/static``, ``django.views.static.serve`` for ``/uploads``) under gunicorn (WSGI) and uvicorn
(ASGI). Every behaviour row runs against every site; each site has its own images and list.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.imageset import ImageSet, make_image_set
from tests.realserver import serve

GUNICORN = ["{python}", "-m", "gunicorn", "--bind", "127.0.0.1:{port}", "--workers", "1"]
GTHREAD = [*GUNICORN, "--worker-class", "gthread", "--threads", "8"]
UVICORN = ["{python}", "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"]
DJANGO = {"DJANGO_SETTINGS_MODULE": "tests.django_project.settings"}
SITES: dict[str, tuple[list[str], dict[str, str]]] = {
    "flask-sync": ([*GUNICORN, "--worker-class", "sync", "tests.apps.flask_app:app"], {}),
    "flask-gthread": ([*GTHREAD, "tests.apps.flask_app:app"], {}),
    "wsgi-gthread": ([*GTHREAD, "tests.apps.wsgi_app:application"], {}),
    "django-wsgi": ([*GTHREAD, "tests.django_project.wsgi:application"], DJANGO),
    "django-asgi": (
        [*UVICORN, "--no-access-log", "tests.django_project.asgi:application"],
        {**DJANGO, "SMTEST_ASYNC": "1"},
    ),
    "django-asgi-async": (
        [*UVICORN, "--no-access-log", "tests.django_project.asgi:application"],
        {**DJANGO, "SMTEST_ASYNC": "1", "SMTEST_NO_WHITENOISE": "1"},
    ),
}
ORIGINAL_ONLY = ("etag", "last-modified", "content-range", "content-encoding", "accept-ranges")


@dataclass
class Site:
    name: str
    client: httpx.Client
    images: ImageSet

    def detections(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.client.get("/_detections").json()["detections"]
        return found

    def reasons(self, fragment: str) -> list[str | None]:
        return [d["reason"] for d in self.detections() if fragment in d["url"]]


@pytest.fixture(scope="module", params=list(SITES))
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    name: str = request.param
    images = make_image_set(tmp_path_factory.mktemp(name))
    command, env = SITES[name]
    with (
        serve(command, env={"SMTEST_DIR": str(images.root), **env}) as server,
        httpx.Client(base_url=server.url, timeout=20) as client,
    ):
        yield Site(name, client, images)


def assert_blocked(response: httpx.Response, head: bool = False) -> None:
    assert response.status_code == 451, (response.status_code, response.headers)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    for name in ORIGINAL_ONLY:
        assert name not in response.headers, name
    assert "set-cookie" not in response.headers
    if not head:
        assert b"Unavailable For Legal Reasons" in response.content
        assert int(response.headers["content-length"]) == len(response.content)


def test_non_image_responses_stream_through_unbuffered(site: Site) -> None:
    key = hashlib.sha1(site.name.encode()).hexdigest()[:8]
    with site.client.stream("GET", f"/gated?key={key}") as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"first chunk\n"  # arrives while the app still holds the rest
        (site.images.root / f"release-{key}").touch()
        assert b"".join(chunks) == b"second chunk\n"
    assert site.client.get("/text").text == "hello"


def test_clean_image_is_sent_byte_identical_with_exact_length(site: Site) -> None:
    for path in ("/static/clean.jpg", "/stream/clean.png", "/file/clean2.jpg"):
        response = site.client.get(path)
        name = path.rsplit("/", 1)[1]
        assert response.status_code == 200, path
        assert response.content == site.images.body(name)
        assert response.headers["content-length"] == str(len(response.content))
        assert "transfer-encoding" not in response.headers


def test_listed_image_gets_451_and_its_url_is_then_refused_before_the_app(site: Site) -> None:
    assert_blocked(site.client.get("/static/listed.jpg"))
    [event] = [d for d in site.detections() if d["url"].endswith("/static/listed.jpg")]
    assert event["kind"] == "match"
    assert event["action"] == "blocked"
    assert event["md5"] == hashlib.md5(site.images.body("listed.jpg")).hexdigest()
    (site.images.images / "listed.jpg").write_bytes(site.images.body("clean.jpg"))
    assert_blocked(site.client.head("/static/listed.jpg"), head=True)
    assert_blocked(site.client.get("/static/listed.jpg", headers={"if-none-match": '"x"'}))
    assert_blocked(site.client.get("/static/listed.jpg"))  # now clean bytes: the URL is refused
    assert len([d for d in site.detections() if d["url"].endswith("listed.jpg")]) == 1


def test_streamed_and_file_responses_of_listed_images_are_blocked(site: Site) -> None:
    assert_blocked(site.client.get("/stream/listed.png"))
    assert_blocked(site.client.get("/file/listed.png"))


def test_range_request_cannot_fetch_an_unchecked_image(site: Site) -> None:
    assert_blocked(site.client.get("/static/listed.png", headers={"range": "bytes=0-"}))
    for ranges in ("bytes=0-", "bytes=0-99", "bytes=0-9, 20-29"):
        response = site.client.get(
            "/static/clean.png", headers={"range": ranges, "if-range": '"x"'}
        )
        assert response.status_code == 200
        assert "content-range" not in response.headers
        assert response.content == site.images.body("clean.png")


def test_a_206_image_that_still_arrives_is_blocked_as_partial(site: Site) -> None:
    assert_blocked(site.client.get("/partial/clean.jpg"))
    assert site.reasons("/partial/") == ["partial_content"]


def test_head_of_a_clean_image_passes_its_headers(site: Site) -> None:
    response = site.client.head("/static/clean.jpg")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(site.images.body("clean.jpg")))
    assert response.content == b""


def test_no_stale_304_after_the_hash_list_changed(site: Site) -> None:
    first = site.client.get("/static/later.jpg")
    etag = first.headers["etag"]
    assert "~sm" in etag
    again = site.client.get("/static/later.jpg", headers={"if-none-match": etag})
    assert again.status_code == 304
    site.images.add_to_list("later.jpg")  # the operator's list now holds it
    assert_blocked(site.client.get("/static/later.jpg", headers={"if-none-match": etag}))


def test_gzip_encoded_images_are_checked_and_passed_as_they_were(site: Site) -> None:
    with site.client.stream("GET", "/stream/clean.png?encoding=gzip") as response:
        raw = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert gzip.decompress(raw) == site.images.body("clean.png")
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-length"] == str(len(raw))
    assert_blocked(site.client.get("/stream/listed.png?encoding=deflate"))


def test_an_unknown_encoding_is_uninspectable(site: Site) -> None:
    assert_blocked(site.client.get("/stream/clean.png?encoding=br"))
    assert set(site.reasons("encoding=br")) == {"unknown_encoding"}


def test_images_are_found_by_magic_bytes_when_the_type_says_nothing(site: Site) -> None:
    assert_blocked(site.client.get("/stream/listed.bin?type=application/octet-stream"))
    text = site.client.get("/stream/notes.txt?type=application/octet-stream")
    assert text.content == site.images.body("notes.txt")


def test_an_image_labelled_as_text_is_still_checked(site: Site) -> None:
    assert_blocked(site.client.get("/stream/listed.png?type=text/html"))
    clean = site.client.get("/stream/clean.png?type=text/plain")
    assert clean.content == site.images.body("clean.png")


def test_oversize_and_undecodable_images_are_blocked_with_their_reason(site: Site) -> None:
    assert_blocked(site.client.get("/static/big.jpg"))
    assert_blocked(site.client.get("/stream/big.jpg"))  # no content-length: stops at the cap
    assert_blocked(site.client.get("/static/broken.jpg"))
    reasons = {d["url"].split("/", 1)[1]: d["reason"] for d in site.detections()}
    assert reasons["static/big.jpg"] == "too_large"
    assert reasons["stream/big.jpg"] == "too_large"
    assert reasons["static/broken.jpg"] == "undecodable"


def test_concurrent_requests_for_one_uncached_image_scan_it_once(site: Site) -> None:
    before = site.client.get("/_detections").json()["decodes"]
    url = str(site.client.base_url) + "/static/fresh.jpg"
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: httpx.get(url, timeout=30), range(32)))
    assert {r.status_code for r in responses} == {200}
    assert all(r.content == site.images.body("fresh.jpg") for r in responses)
    assert site.client.get("/_detections").json()["decodes"] == before + 1


def test_images_sent_with_the_legacy_write_callable_are_checked(site: Site) -> None:
    if site.name != "wsgi-gthread":
        pytest.skip("write() is the plain WSGI app's")
    response = site.client.get("/write/clean.jpg")
    assert response.content == site.images.body("clean.jpg")
    assert response.headers["content-length"] == str(len(response.content))
    assert_blocked(site.client.get("/write/listed.png"))


def test_django_uploads_served_by_the_static_serve_view_are_checked(site: Site) -> None:
    if not site.name.startswith("django"):
        pytest.skip("django.views.static.serve is the Django site's")
    response = site.client.get("/uploads/clean2.jpg")
    assert response.content == site.images.body("clean2.jpg")
    assert response.headers["content-length"] == str(len(response.content))
    assert_blocked(site.client.get("/uploads/listed.bin"))  # octet-stream: found by its bytes
    future = {"if-modified-since": "Fri, 01 Jan 2100 00:00:00 GMT"}
    assert site.client.get("/uploads/clean2.jpg", headers=future).status_code == 200
    gz = site.images.images / "listed-upload.png.gz"  # served with Content-Encoding: gzip
    gz.write_bytes(gzip.compress(site.images.body("listed.png")))
    assert_blocked(site.client.get("/uploads/listed-upload.png.gz"))
