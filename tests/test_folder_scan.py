"""``safemedia scan`` on a real folder with the real engine and store."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from safemedia.cli import main
from safemedia.config import Config
from safemedia.store import open_store
from tests.imageset import ImageSet, make_image_set


@pytest.fixture
def site(tmp_path: Path) -> tuple[ImageSet, str]:
    """The synthetic image set, and a config (its list, a store) beside it."""
    images = make_image_set(tmp_path / "site")
    config = tmp_path / "site" / "safemedia.toml"
    config.write_text(
        '[safemedia]\nhash_lists = ["list.txt"]\nstore = "sqlite:///state.db"\n', encoding="utf-8"
    )
    return images, str(config)


def scan(config: str, *targets: Path | str, json_output: bool = False) -> int:
    return main(["scan", *map(str, targets), "--config", config, *(["--json"] * json_output)])


def test_scan_records_matches_and_reports_uninspectable_images(
    site: tuple[ImageSet, str], capsys: pytest.CaptureFixture[str]
) -> None:
    images, config = site
    status = scan(config, images.images)
    out = capsys.readouterr().out
    assert status == 1
    matched = sorted(line.split(":")[0] for line in out.splitlines() if ": MATCH " in line)
    assert [Path(m).name for m in matched] == ["listed.bin", "listed.jpg", "listed.png"]
    assert "broken.jpg: UNINSPECTABLE" in out
    assert "notes.txt" not in out  # not an image: counted, not reported
    assert "Scanned 12 files: 3 matched, 1 uninspectable images, 2 not images, 0 unreadable." in out
    assert "CyberTipline" in out
    store = open_store(Config.from_file(config, env=False))
    events = store.detections()
    assert [e.action for e in events] == ["found"] * 3
    assert {Path(e.path).name for e in events} == {"listed.bin", "listed.jpg", "listed.png"}
    assert all(e.method == "SCAN" and e.list_name == "list" for e in events)
    assert store.blocked() == []  # nothing was served through safemedia: nothing to block
    assert store.outbox.status().pending == 0


def test_an_unblocked_image_is_clean_in_the_next_scan(
    site: tuple[ImageSet, str], capsys: pytest.CaptureFixture[str]
) -> None:
    images, config = site
    assert scan(config, images.images / "listed.png") == 1
    store = open_store(Config.from_file(config, env=False))
    store.unblock(str(store.detections()[0].id), reason="reviewed: synthetic test picture")
    capsys.readouterr()
    assert scan(config, images.images / "listed.png", json_output=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["results"][0]["verdict"] == "CLEAN"
    assert report["summary"]["matched"] == 0


def test_scan_exit_status_clean_and_unreadable(
    site: tuple[ImageSet, str], capsys: pytest.CaptureFixture[str]
) -> None:
    images, config = site
    assert scan(config, images.images / "clean.jpg") == 0
    assert scan(config, images.images / "clean.jpg", images.root / "missing.jpg") == 2
    assert "missing.jpg: cannot read" in capsys.readouterr().err


def test_scan_needs_hash_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "safemedia.toml"
    config.write_text("[safemedia]\n", encoding="utf-8")
    assert main(["scan", str(tmp_path), "--config", str(config)]) == 2
    assert "no hash_lists" in capsys.readouterr().err


def test_scan_shows_progress_on_a_terminal(site: tuple[ImageSet, str]) -> None:
    images, config = site
    leader, follower = pty.openpty()
    with os.fdopen(leader, "rb", buffering=0) as terminal:
        done = subprocess.run(
            [sys.executable, "-m", "safemedia", "scan", str(images.images), "--config", config],
            stdout=subprocess.PIPE,
            stderr=follower,
            check=False,
            timeout=120,
        )
        os.close(follower)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the terminal's other end is closed
            while chunk := terminal.read(4096):
                shown += chunk
    assert done.returncode == 1
    assert b"\rscanned 12 files, 3 matched" in shown
    assert b"scanned" not in done.stdout  # progress never mixes into the results
