"""Tricks over real HTTP: each is shown blocked or harmless, under uvicorn and under gunicorn.

The app (``tests.adversarial.apps``) runs the real Engine, the SQLite store and the notifier
(mailing a real aiosmtpd on 127.0.0.1). Every URL that should be blocked is fresh (its own query
string), so a block comes from the trick being seen through, not from an earlier block of the
same URL.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from safemedia.config import Config
from safemedia.store import open_store
from tests.adversarial.evidence import record
from tests.adversarial.hostile import Case, hostile_cases, seed_files
from tests.adversarial.servers import ALL_KINDS, app_server
from tests.adversarial.site import NOT_AN_IMAGE, Site, write_config
from tests.smtp_support import SmtpServer, smtp_server

pytest.importorskip("safemedia.engine")

BLOCKED = 451
OPERATOR = "ops@example.org"


@dataclass
class Target:
    client: httpx.Client
    smtp: SmtpServer
    config_dir: Path
    kind: str


def verify_address(config_path: Path, address: str) -> None:
    """Mark ``address`` verified in the store, as `safemedia email confirm` would."""
    store = open_store(Config.from_file(config_path, env=False))
    try:
        store.confirm_code(store.new_verification_code(address))
    finally:
        store.close()


@pytest.fixture(scope="module", params=ALL_KINDS)
def target(
    request: pytest.FixtureRequest, site: Site, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    kind: str = request.param
    where = tmp_path_factory.mktemp(f"tricks-{kind}")
    with smtp_server() as smtp:
        config = write_config(
            site,
            where,
            notify_to=OPERATOR,
            notify_digest_window=0.5,
            smtp={"host": "127.0.0.1", "port": smtp.port, "timeout": 5.0},
        )
        verify_address(config, OPERATOR)
        with (
            app_server(kind, site, config) as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            yield Target(client, smtp, where, kind)


def blocked(response: httpx.Response) -> bool:
    """A block: 451, no-store, and none of the image's bytes."""
    return (
        response.status_code == BLOCKED
        and "no-store" in response.headers.get("cache-control", "")
        and b"\xff\xd8\xff" not in response.content
        and "content-range" not in response.headers
    )


# --- Range and conditional requests ------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Range": "bytes=0-"},
        {"Range": "bytes=0-99"},
        {"Range": "bytes=0-99, 200-299, 400-"},
        {"Range": "bytes=-500"},
        {"Range": "bytes=100-199", "If-Range": '"anything"'},
    ],
    ids=["open", "first-100", "multi-range", "suffix", "if-range"],
)
def test_range_request_cannot_fetch_an_unchecked_image(
    target: Target, headers: dict[str, str]
) -> None:
    query = "t=" + hashlib.md5(repr(headers).encode()).hexdigest()[:8]
    response = target.client.get(f"/static/listed-a.jpg?{query}", headers=headers)
    assert blocked(response), (response.status_code, response.headers)


@pytest.mark.parametrize("range_value", ["bytes=0-99", "bytes=0-9, 20-29", "bytes=-100"])
def test_range_on_a_clean_image_gets_the_whole_checked_image(
    target: Target, site: Site, range_value: str
) -> None:
    response = target.client.get("/static/clean-01.jpg", headers={"Range": range_value})
    assert response.status_code == 200
    assert response.content == site.body("clean-01.jpg")


def test_if_range_with_the_real_etag_still_cannot_fetch_a_listed_image(target: Target) -> None:
    head = target.client.head("/static/listed-b.png?t=if-range-etag")
    etag = head.headers.get("etag", '"x"')
    response = target.client.get(
        "/static/listed-b.png?t=if-range-etag2", headers={"Range": "bytes=0-50", "If-Range": etag}
    )
    assert blocked(response)


def test_head_shows_no_bytes_and_the_following_get_is_blocked_and_so_is_head(
    target: Target,
) -> None:
    url = "/static/listed-b.png?t=head-then-get"
    first = target.client.head(url)
    assert first.content == b""
    assert blocked(target.client.get(url))
    again = target.client.head(url)
    assert again.status_code == BLOCKED
    assert again.content == b""


def test_a_304_is_not_given_for_an_image_once_the_list_names_it(target: Target, site: Site) -> None:
    url = f"/static/{site.spare}"
    first = target.client.get(url)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert target.client.get(url, headers={"If-None-Match": etag}).status_code == 304
    before = target.client.get("/_stats").json()["engine"]["lists_generation"]
    with (target.config_dir / "list.txt").open("a") as f:
        f.write(f"pdq {site.spare_pdq} spare-added-later\n")
    deadline = time.monotonic() + 10
    while target.client.get("/_stats").json()["engine"]["lists_generation"] == before:
        assert time.monotonic() < deadline, "the list was not reloaded"
        time.sleep(0.1)
    response = target.client.get(url, headers={"If-None-Match": etag})
    assert blocked(response), response.status_code
    modified = target.client.get(url, headers={"If-Modified-Since": first.headers["date"]})
    assert blocked(modified)


# --- labels and encodings ----------------------------------------------------------------------


@pytest.mark.parametrize("label", ["octet-stream", "none"])
def test_listed_image_with_a_generic_label_is_blocked(target: Target, label: str) -> None:
    assert blocked(target.client.get(f"/typed/{label}/listed-c.webp"))


@pytest.mark.parametrize("label", ["text-plain", "text-html"])
def test_listed_image_labelled_as_text_is_blocked(target: Target, label: str) -> None:
    """Browsers show image bytes in an <img> whatever the label, so labels prove nothing."""
    assert blocked(target.client.get(f"/typed/{label}/listed-c.webp"))


def test_clean_image_labelled_text_plain_passes_byte_identical(target: Target, site: Site) -> None:
    response = target.client.get("/typed/text-plain/clean-02.jpg")
    assert response.status_code == 200
    assert response.content == site.body("clean-02.jpg")


def test_non_image_bytes_labelled_image_jpeg_are_blocked_as_uninspectable(target: Target) -> None:
    assert blocked(target.client.get(f"/typed/image-jpeg/{NOT_AN_IMAGE}"))


@pytest.mark.parametrize("times", [1, 2, 3])
def test_gzipped_listed_image_is_blocked_however_often_it_is_encoded(
    target: Target, times: int
) -> None:
    assert blocked(target.client.get(f"/gzip/{times}/listed-d.jpg"))


def test_double_gzipped_clean_image_passes_with_its_encoding_intact(
    target: Target, site: Site
) -> None:
    response = target.client.get("/gzip/2/clean-03.jpg")
    assert response.status_code == 200
    assert response.headers["content-encoding"].replace(" ", "") == "gzip,gzip"
    assert response.content == site.body("clean-03.jpg")  # httpx undid both layers


def test_gzip_bomb_is_refused_without_inflating_it(target: Target) -> None:
    before = target.client.get("/_stats").json()["rss_kib"]
    started = time.perf_counter()
    response = target.client.get("/bomb.png")
    seconds = time.perf_counter() - started
    after = target.client.get("/_stats").json()["rss_kib"]
    assert blocked(response)
    record(
        f"gzip-bomb-{target.kind}",
        {
            "inflates_to": "1 GiB",
            "seconds": round(seconds, 2),
            "rss_growth_mib": (after - before) // 1024,
        },
    )
    assert after - before < 256 * 1024, f"the worker grew by {(after - before) // 1024} MiB"


# --- hostile bodies through the whole stack -----------------------------------------------------

SEEDS = seed_files()


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(case=hostile_cases(SEEDS))
def test_hostile_image_bodies_never_cause_a_5xx_and_pass_only_intact(
    target: Target, site: Site, case: Case
) -> None:
    name = f"fuzz-{hashlib.sha256(case.body).hexdigest()[:16]}.bin"
    (site.static / name).write_bytes(case.body)
    response = target.client.get(f"/typed/image-jpeg/{name}")
    assert response.status_code in (200, BLOCKED), (case.seed, response.status_code)
    if response.status_code == 200:
        assert response.content == case.body


# --- copies of a listed image ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mirror-a.jpg", "rotated-a.png", "reencoded-a.jpg"])
def test_mirrored_rotated_or_reencoded_copy_is_blocked(target: Target, name: str) -> None:
    assert blocked(target.client.get(f"/static/{name}"))


def test_listed_image_as_the_third_frame_of_a_gif_is_blocked(target: Target) -> None:
    assert blocked(target.client.get("/static/frame3-a.gif"))


def test_clean_images_pass_byte_identical(target: Target, site: Site) -> None:
    for name in list(site.clean)[:10]:
        response = target.client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert hashlib.sha256(response.content).hexdigest() == site.clean[name]


# --- URLs full of tricks -----------------------------------------------------------------------

# CR/LF go in the query (the apps' routers, like most, refuse a newline in the path) and HTML in
# both; the server decodes them, so safemedia sees the raw characters in its Detection.
TRICKY_PATH = (
    "/any/%3Cscript%3Ealert(1)%3C/script%3E%22%3E%3Cimg%20src=x%20onerror=alert(2)%3E.jpg"
    "?q=x%0D%0ABcc:%20victim@example.com%0D%0ASubject:%20injected%0D%0A%0D%0A%3Cscript%3E"
)


def test_url_with_crlf_and_html_gives_a_plain_block_page_and_a_mail_without_injection(
    target: Target,
) -> None:
    response = target.client.get(TRICKY_PATH)
    assert blocked(response), (response.status_code, response.headers, response.text[:300])
    page = response.text.lower()
    for needle in ("<script", "onerror", "alert("):
        assert needle not in page
    assert not any(name.lower() in ("bcc", "subject") for name in response.headers)
    mail = _mail_about(target, "victim")
    assert mail["Bcc"] is None
    assert mail["To"] == OPERATOR
    for name, value in mail.items():
        assert not any(c in str(value) for c in "\r\n"), name
        assert not str(value).lower().startswith("injected"), name
    rcpts = {r for got in target.smtp.inbox.received for r in got.rcpt_tos}
    assert rcpts == {OPERATOR}
    for part in mail.walk():
        if part.get_content_type() == "text/html":
            html = str(part.get_content()).lower()
            assert "<script" not in html
            assert "onerror=" not in html


def _mail_about(target: Target, needle: str, timeout: float = 20.0) -> EmailMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in target.smtp.inbox.messages:
            text = message.as_string()
            if needle in text:
                return message
        time.sleep(0.1)
    raise AssertionError(
        f"no mail mentions {needle!r}; got {len(target.smtp.inbox.messages)} mails"
    )
