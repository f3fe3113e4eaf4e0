"""The example forums run unmodified on real servers: the landscape passes, the listed pattern
is refused with 451, the alert reaches the verified address, and re-encoded uploads are caught."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.example_apps import EXAMPLES, KINDS, Forum, demo_tools, get, running_forum

LISTED = f"/uploads/{demo_tools.LISTED_IMAGE}"
ALLOWED = f"/uploads/{demo_tools.ALLOWED_IMAGE}"
STATIC_LOGO = {"flask": "/static/logo.png", "django": "/static/gallery/logo.png"}


@pytest.fixture(scope="module", params=KINDS)
def forum(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Forum]:
    kind: str = request.param
    with running_forum(kind, tmp_path_factory.mktemp(kind)) as running:
        yield running


def test_demo_images_and_list_are_regenerated_identically() -> None:
    images = EXAMPLES / "demo" / "images"
    for name, draw in [
        (demo_tools.LISTED_IMAGE, demo_tools.draw_listed_pattern),
        (demo_tools.ALLOWED_IMAGE, demo_tools.draw_landscape),
    ]:
        with Image.open(images / name) as committed:
            assert committed.convert("RGB").tobytes() == draw().tobytes(), name
    committed_list = (EXAMPLES / "demo" / "demo-list.txt").read_text(encoding="utf-8")
    assert committed_list == demo_tools.demo_list_text()


def test_gallery_page_lists_both_demo_images(forum: Forum) -> None:
    page = get(forum.url + "/")
    assert page.status_code == 200
    assert LISTED in page.text
    assert ALLOWED in page.text


def test_allowed_image_is_served_byte_for_byte(forum: Forum) -> None:
    response = get(forum.url + ALLOWED)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == (forum.app_dir / "uploads" / demo_tools.ALLOWED_IMAGE).read_bytes()


def test_static_image_passes_through(forum: Forum) -> None:
    response = get(forum.url + STATIC_LOGO[forum.kind])
    assert response.status_code == 200
    assert response.content.startswith(b"\x89PNG")


def test_listed_image_is_refused_with_a_readable_451_page(forum: Forum) -> None:
    response = get(forum.url + LISTED)
    assert response.status_code == 451
    assert "Unavailable For Legal Reasons" in response.text
    assert "no-store" in response.headers["cache-control"]
    assert b"\x89PNG" not in response.content
    assert get(forum.url + LISTED).status_code == 451


def test_alert_mail_reaches_the_verified_address_without_the_image(forum: Forum) -> None:
    get(forum.url + LISTED)
    forum.wait_for_mail(2)  # the verification code, then the alert
    alert = forum.mail.messages[-1]
    assert alert["To"] == demo_tools.DEMO_ADDRESS
    text = demo_tools.mail_text(alert)
    assert LISTED in text
    assert not any(part.get_content_maintype() == "image" for part in alert.walk())
    raw = alert.as_bytes()
    assert b"\x89PNG" not in raw
    assert b"iVBORw0KGgo" not in raw  # the PNG signature in base64


def _upload(forum: Forum, name: str, body: bytes) -> str:
    with httpx.Client(base_url=forum.url, timeout=30.0) as client:
        data = {}
        if forum.kind == "django":
            page = client.get("/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert token is not None
            data["csrfmiddlewaretoken"] = token.group(1)
        response = client.post("/upload", data=data, files={"image": (name, body)})
        assert response.status_code == 302
    return f"/uploads/{name}"


def test_upload_of_the_listed_image_re_encoded_as_jpeg_is_refused(forum: Forum) -> None:
    listed = Image.open(forum.app_dir / "uploads" / demo_tools.LISTED_IMAGE)
    out = io.BytesIO()
    listed.convert("RGB").resize((480, 360)).save(out, format="JPEG", quality=70)
    url = _upload(forum, "holiday.jpg", out.getvalue())
    assert url in get(forum.url + "/").text
    assert get(forum.url + url).status_code == 451


def test_upload_of_an_ordinary_picture_is_served(forum: Forum) -> None:
    body = (Path(demo_tools.__file__).parent / "demo" / "images" / "landscape.png").read_bytes()
    url = _upload(forum, "my-walk.png", body)
    response = get(forum.url + url)
    assert response.status_code == 200
    assert response.content == body


def test_operator_cli_lists_the_blocked_url_from_the_app_config(forum: Forum) -> None:
    get(forum.url + LISTED)
    command = [*demo_tools.safemedia_command(forum.app_dir), "blocked"]
    result = subprocess.run(command, cwd=forum.app_dir, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert LISTED in result.stdout
