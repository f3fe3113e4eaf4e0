"""Flask and Django with nothing stood in: the real engine (PDQ), the SQLite store, two workers.

The list holds the PDQ hash of a synthetic picture; the site serves a re-encoded copy of it (other
bytes, same picture). Each site runs under gunicorn with two worker processes sharing one store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from safemedia import Config
from safemedia.hashing import hash_image
from safemedia.store import open_store
from tests.realserver import serve
from tests.synthetic import encode, picture

GUNICORN = ["{python}", "-m", "gunicorn", "--bind", "127.0.0.1:{port}", "--workers", "2"]
SITES = {
    "flask": ([*GUNICORN, "--worker-class", "sync", "tests.apps.flask_real:app"], {}),
    "django": (
        [*GUNICORN, "--worker-class", "gthread", "tests.django_project.wsgi:application"],
        {"DJANGO_SETTINGS_MODULE": "tests.django_project.settings"},
    ),
}


@dataclass
class Deployment:
    url: str
    root: Path
    config: Config

    def body(self, name: str) -> bytes:
        return (self.root / "images" / name).read_bytes()


@pytest.fixture(scope="module", params=list(SITES))
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp(f"real-{request.param}")
    (root / "images").mkdir()
    known = picture(50, (320, 240))
    (root / "images" / "copy.jpg").write_bytes(encode(known, "JPEG", quality=60))
    (root / "images" / "clean.jpg").write_bytes(encode(picture(51, (320, 240)), "JPEG"))
    pdq = hash_image("pdq", known).value.hex()
    (root / "list.txt").write_text(f"pdq {pdq} case-50\n")
    toml = root / "safemedia.toml"
    toml.write_text(
        '[safemedia]\nhash_lists = ["list.txt"]\nstore = "sqlite:///state.db"\n'
        "list_reload_interval = 0.2\n"
    )
    command, env = SITES[request.param]
    with serve(command, env={"SMTEST_DIR": str(root), "SMTEST_CONFIG": str(toml), **env}) as s:
        yield Deployment(s.url, root, Config.from_file(toml))


def test_a_perceptual_match_is_blocked_and_recorded_in_the_store(site: Deployment) -> None:
    response = httpx.get(site.url + "/uploads/copy.jpg")
    assert response.status_code == 451
    assert response.headers["cache-control"] == "no-store"
    store = open_store(site.config)
    try:
        [found] = [d for d in store.detections() if d.path == "/uploads/copy.jpg"]
        assert (found.kind, found.algorithm, found.entry_id) == ("match", "pdq", "case-50")
        assert any(b.url.endswith("/uploads/copy.jpg") for b in store.blocked())
    finally:
        store.close()


def test_every_worker_refuses_the_blocked_url_and_passes_clean_images(site: Deployment) -> None:
    httpx.get(site.url + "/uploads/copy.jpg")
    for _ in range(8):  # a new connection each time: both workers answer some
        assert httpx.get(site.url + "/uploads/copy.jpg").status_code == 451
        assert httpx.head(site.url + "/uploads/copy.jpg").status_code == 451
        clean = httpx.get(site.url + "/uploads/clean.jpg")
        assert clean.content == site.body("clean.jpg")
        assert clean.headers["content-length"] == str(len(clean.content))
