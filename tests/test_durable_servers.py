"""Durability with real servers: gunicorn with four workers sharing one store under load, and a
uvicorn process killed with SIGKILL after a block and restarted (block kept, alert delivered)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from safemedia.config import Config
from safemedia.store import Store, open_store
from tests import realserver
from tests.imageset import ImageSet, make_image_set
from tests.realserver import Server, free_port, serve
from tests.smtp_support import smtp_server

TO = "ops@example.org"
GUNICORN = [
    "{python}",
    "-m",
    "gunicorn",
    "--workers",
    "4",
    "--worker-class",
    "gthread",
    "--threads",
    "4",
    "--bind",
    "127.0.0.1:{port}",
    "tests.apps.stored:wsgi",
]
UVICORN = [*realserver.UVICORN, "tests.apps.stored:asgi"]


@pytest.fixture
def images(tmp_path: Path) -> ImageSet:
    images = make_image_set(tmp_path / "site")
    (images.images / "victim.jpg").write_bytes(images.body("listed.jpg"))
    return images


def site_config(tmp_path: Path, images: ImageSet, smtp_port: int) -> tuple[Path, Store]:
    """A config file (the images' list, a store in tmp_path, SMTP on ``smtp_port``) and its
    store, with the alert address verified."""
    path = tmp_path / "safemedia.toml"
    path.write_text(
        "[safemedia]\n"
        f'hash_lists = ["{images.list_path}"]\n'
        'store = "sqlite:///state.db"\n'
        f'notify_to = "{TO}"\n'
        "notify_digest_window = 0\n"
        "notify_retry_initial = 0.2\n"
        "notify_retry_max = 0.5\n"
        "[safemedia.smtp]\n"
        f'host = "127.0.0.1"\nport = {smtp_port}\ntimeout = 2\n',
        encoding="utf-8",
    )
    store = open_store(Config.from_file(path, env=False))
    store.confirm_code(store.new_verification_code(TO))
    return path, store


def env_for(config: Path, images: ImageSet) -> dict[str, str]:
    return {"SAFEMEDIA_CONFIG": str(config), "SMTEST_DIR": str(images.root)}


def fresh_get(server: Server, path: str) -> httpx.Response:
    """One request on a new connection (so any worker may answer it), for the site's host name
    (blocks are per host and URL; a restarted test server listens on another port)."""
    with httpx.Client(base_url=server.url, timeout=20, headers={"Host": "site.test"}) as client:
        return client.get(path)


def test_four_gunicorn_workers_share_blocks_under_load_without_lock_errors(
    tmp_path: Path, images: ImageSet
) -> None:
    with smtp_server() as mail:
        config, store = site_config(tmp_path, images, mail.port)
        with serve(GUNICORN, env=env_for(config, images)) as server:
            paths = [f"/images/listed.jpg?n={n}" for n in range(40)]
            paths += [f"/images/clean.jpg?n={n}" for n in range(40)]
            with ThreadPoolExecutor(16) as pool:
                statuses = list(pool.map(lambda p: fresh_get(server, p).status_code, paths))
                pids = set(pool.map(lambda _: fresh_get(server, "/pid").text, range(40)))
            assert statuses == [451] * 40 + [200] * 40
            assert len(pids) >= 2  # the load really was spread over several workers
            # Every worker first learns victim.jpg is not blocked (and may cache that answer);
            # then its bytes turn bad for one request (blocked by one worker) and clean again:
            # from then on only the shared URL block can refuse it, whichever worker answers.
            victim = images.images / "victim.jpg"
            victim.write_bytes(images.body("clean.jpg"))
            with ThreadPoolExecutor(8) as pool:
                before = list(
                    pool.map(lambda _: fresh_get(server, "/images/victim.jpg"), range(40))
                )
            assert {r.status_code for r in before} == {200}
            victim.write_bytes(images.body("listed.jpg"))
            assert fresh_get(server, "/images/victim.jpg").status_code == 451
            victim.write_bytes(images.body("clean.jpg"))
            time.sleep(1.0)  # the workers' answers from the store are reused for up to a second
            with ThreadPoolExecutor(8) as pool:
                again = list(pool.map(lambda _: fresh_get(server, "/images/victim.jpg"), range(40)))
            assert {r.status_code for r in again} == {451}
            assert fresh_get(server, "/images/clean.jpg?n=x").status_code == 200
            mail.wait_for(1)
            deadline = time.monotonic() + 30
            while store.outbox.status().pending and time.monotonic() < deadline:
                time.sleep(0.1)
            output = server.output()
        assert "locked" not in output
        assert "could not record" not in output
    assert len(store.detections()) == 41
    assert len(store.blocked()) == 41
    assert store.outbox.status().pending == 0
    mailed = "\n".join(m.get_content() for m in mail.inbox.messages)
    assert all(mailed.count(f"listed.jpg?n={n}\r\n") == 1 for n in range(40))


def test_block_and_pending_alert_survive_sigkill_and_restart(
    tmp_path: Path, images: ImageSet
) -> None:
    smtp_port = free_port()  # nothing listens yet: the SMTP server is down
    config, store = site_config(tmp_path, images, smtp_port)
    env = env_for(config, images)
    with serve(UVICORN, env=env) as server:
        assert fresh_get(server, "/images/victim.jpg").status_code == 451
        deadline = time.monotonic() + 20
        while store.outbox.status().last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.outbox.status().pending == 1  # tried, failed, kept
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
    (images.images / "victim.jpg").write_bytes(images.body("clean.jpg"))
    with smtp_server(port=smtp_port) as mail, serve(UVICORN, env=env) as restarted:
        assert fresh_get(restarted, "/images/victim.jpg").status_code == 451
        assert fresh_get(restarted, "/images/clean.jpg").status_code == 200
        [alert] = mail.wait_for(1)
        deadline = time.monotonic() + 20
        while store.outbox.status().pending and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert len(mail.inbox.messages) == 1
    assert "victim.jpg" in alert.get_content()
    assert store.outbox.status().pending == 0


def test_unblock_from_the_command_line_lets_those_bytes_through_within_a_second(
    tmp_path: Path, images: ImageSet
) -> None:
    config, store = site_config(tmp_path, images, free_port())
    with serve(UVICORN, env=env_for(config, images)) as server:
        assert fresh_get(server, "/images/victim.jpg").status_code == 451
        assert fresh_get(server, "/images/listed.jpg").status_code == 451
        [event, _] = store.detections()
        done = subprocess.run(
            [sys.executable, "-m", "safemedia", "unblock", str(event.id), "--reason", "test"],
            env={**os.environ, "SAFEMEDIA_CONFIG": str(config)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        time.sleep(1.0)  # the workers reuse the store's answers for up to a second
        assert fresh_get(server, "/images/victim.jpg").status_code == 200
        assert fresh_get(server, "/images/listed.jpg").status_code == 200  # same bytes
        assert fresh_get(server, "/images/listed.png").status_code == 451  # other bytes


def test_preloaded_gunicorn_workers_record_block_and_mail(tmp_path: Path, images: ImageSet) -> None:
    """``--preload`` builds the runtime (store, notifier) before forking: the workers must not
    use the parent's SQLite connections, and the alert is still mailed."""
    preload = [*GUNICORN[:4], "2", "--preload", *GUNICORN[5:]]
    with smtp_server() as mail:
        config, store = site_config(tmp_path, images, mail.port)
        with serve(preload, env=env_for(config, images)) as server:
            statuses = [
                fresh_get(server, f"/images/listed.jpg?n={n}").status_code for n in range(8)
            ]
            assert statuses == [451] * 8
            assert {fresh_get(server, "/images/listed.jpg?n=3").status_code for _ in range(6)} == {
                451
            }
            mail.wait_for(1)
            output = server.output()
    assert "Traceback" not in output
    assert len(store.blocked()) == 8
