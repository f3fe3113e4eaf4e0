"""A real browser (Debian's headless Chromium, driven by Playwright) against the example forums.

Chromium comes from ``scripts/system-deps`` (apt). Without it this test skips on a developer's
machine and fails under ``CI=true``, so CI can never pass without having run it. Screenshots go
to ``test-artifacts/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.example_apps import KINDS, ROOT, demo_tools, running_forum

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
IMAGE_WIDTHS = "els => Object.fromEntries(els.map(e => [e.alt, e.complete ? e.naturalWidth : -1]))"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: scripts/system-deps installs Debian's chromium"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.parametrize("kind", KINDS)
def test_browser_shows_the_allowed_image_and_not_the_listed_one(
    kind: str, browser: Any, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with running_forum(kind, tmp_path, verify=False) as forum:
        page = browser.new_page(viewport={"width": 1000, "height": 520})
        try:
            page.goto(forum.url + "/", wait_until="load")
            widths = page.eval_on_selector_all("main img", IMAGE_WIDTHS)
            logo = page.eval_on_selector("header img", "e => e.naturalWidth")
            blocked = page.eval_on_selector_all("figure.blocked figcaption", "els => els.length")
            page.screenshot(path=str(ARTIFACTS / f"{kind}-gallery.png"))

            response = page.goto(forum.url + f"/uploads/{demo_tools.LISTED_IMAGE}")
            block_text = page.inner_text("body")
            page.screenshot(path=str(ARTIFACTS / f"{kind}-block-page.png"))
        finally:
            page.close()

    assert widths[demo_tools.ALLOWED_IMAGE] > 0
    assert widths[demo_tools.LISTED_IMAGE] == 0
    assert logo > 0  # a static image (WhiteNoise in the Django forum) passes through
    assert blocked == 1
    assert response is not None
    assert response.status == 451
    assert "Unavailable For Legal Reasons" in block_text
