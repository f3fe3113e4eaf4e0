"""The notifier against a real SMTP server (aiosmtpd on 127.0.0.1): content, digests, TLS, AUTH,
outages, verification and once-only delivery."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from safemedia.config import Config
from safemedia.notify import Notifier
from safemedia.store import Store, open_store
from tests.realserver import free_port
from tests.smtp_support import (
    PASSWORD,
    USER,
    make_certificate,
    server_tls_context,
    smtp_server,
)
from tests.store_support import SHA_A, match_detection, store_config, uninspectable_detection

TO = "ops@example.org"


def mail_config(
    tmp_path: Path, port: int, *, smtp: dict[str, Any] | None = None, **extra: Any
) -> Config:
    settings: dict[str, Any] = {
        "notify_to": TO,
        "notify_digest_window": 0.0,
        "notify_retry_initial": 0.1,
        "notify_retry_max": 0.3,
        "smtp": {"host": "127.0.0.1", "port": port, "sender": "safemedia@example.org", "timeout": 5}
        | (smtp or {}),
    }
    settings.update(extra)
    return store_config(tmp_path, **settings)


def verified_store(config: Config) -> Store:
    store = open_store(config)
    assert config.notify_to is not None
    store.confirm_code(store.new_verification_code(config.notify_to))
    return store


@pytest.fixture
def running() -> Iterator[list[Notifier]]:
    """Notifiers started by a test, stopped at its end."""
    started: list[Notifier] = []
    yield started
    for notifier in started:
        notifier.stop()


def start(notifiers: list[Notifier], config: Config, store: Store) -> Notifier:
    notifier = Notifier(config, store, poll_interval=0.05)
    notifier.start()
    notifiers.append(notifier)
    return notifier


def mailing(notifiers: list[Notifier], tmp_path: Path, port: int, **extra: Any) -> Store:
    """A verified store on ``tmp_path`` with a started notifier mailing to ``port``."""
    config = mail_config(tmp_path, port, **extra)
    store = verified_store(config)
    start(notifiers, config, store)
    return store


def wait_until_sent(store: Store, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while store.outbox.status().pending and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.outbox.status().pending == 0


def test_first_detection_is_mailed_at_once_with_what_a_report_needs(
    tmp_path: Path, running: list[Notifier]
) -> None:
    with smtp_server() as server:
        store = mailing(running, tmp_path, server.port, notify_digest_window=600)
        store.record(match_detection("/u/1.jpg"))
        [mail] = server.wait_for(1)
        wait_until_sent(store)
    assert server.inbox.received[0].rcpt_tos == [TO]
    assert mail["To"] == TO
    assert mail["Subject"] == "safemedia: 1 image blocked on example.org"
    assert not mail.is_multipart()  # no attachment: never the image
    body = mail.get_content()
    for expected in (
        "example.org/u/1.jpg",
        "List:       known",
        "Entry id:   entry-17",
        "Distance:   4 (pdq)",
        f"SHA-256:    {SHA_A}",
        "MD5:        " + "d" * 32,
        "safemedia unblock 1 --reason",
        "safemedia events show",
        "CyberTipline",
        "regional hotline",
    ):
        assert expected in body


def test_later_detections_in_the_window_go_in_one_digest(
    tmp_path: Path, running: list[Notifier]
) -> None:
    with smtp_server() as server:
        store = mailing(running, tmp_path, server.port, notify_digest_window=1.5)
        store.record(match_detection("/u/first.jpg"))
        server.wait_for(1)
        store.record(match_detection("/u/second.jpg"))
        store.record(uninspectable_detection("/u/third.png"))
        time.sleep(0.5)
        assert len(server.inbox.messages) == 1  # the window holds them back
        first, digest = server.wait_for(2)
        wait_until_sent(store)
        time.sleep(0.3)
        assert len(server.inbox.messages) == 2
    assert "first.jpg" in first.get_content()
    assert "(digest)" in str(digest["Subject"])
    assert "2 images blocked" in str(digest["Subject"])
    body = digest.get_content()
    assert "second.jpg" in body
    assert "third.png" in body
    assert "Not inspectable: too_large" in body
    assert "first.jpg" not in body


def test_alerts_wait_in_the_outbox_until_the_address_is_verified(
    tmp_path: Path, running: list[Notifier], caplog: pytest.LogCaptureFixture
) -> None:
    with smtp_server() as server:
        config = mail_config(tmp_path, server.port)
        store = open_store(config)
        with caplog.at_level(logging.WARNING, logger="safemedia.notify"):
            start(running, config, store)
        assert f"safemedia email verify {TO}" in caplog.text
        store.record(match_detection("/u/1.jpg"))
        store.record(match_detection("/u/2.jpg"))
        time.sleep(0.5)
        assert server.inbox.messages == []
        assert store.outbox.status().pending == 2
        store.confirm_code(store.new_verification_code(TO))
        [mail] = server.wait_for(1)
        wait_until_sent(store)
    body = mail.get_content()
    assert "/u/1.jpg" in body
    assert "/u/2.jpg" in body


def test_url_with_crlf_cannot_inject_headers_or_recipients(
    tmp_path: Path, running: list[Notifier]
) -> None:
    evil = "/u/a.jpg\r\nBcc: thief@example.net\r\nSubject: hi"
    with smtp_server() as server:
        store = mailing(running, tmp_path, server.port)
        store.record(match_detection(evil, host="example.org\r\nX-Evil: 1"))
        [mail] = server.wait_for(1)
    assert server.inbox.received[0].rcpt_tos == [TO]
    assert mail["Bcc"] is None
    assert mail["X-Evil"] is None
    assert mail.get_all("Subject") == [mail["Subject"]]
    assert "\\x0d\\x0aBcc: thief@example.net" in mail.get_content()
    assert not re.search(r"^Bcc:", mail.get_content(), re.MULTILINE)


def test_starttls_with_auth_delivers(
    tmp_path: Path, running: list[Notifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = make_certificate(tmp_path)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    with smtp_server(starttls=server_tls_context(cert, key), auth=True) as server:
        smtp = {
            "starttls": True,
            "cafile": str(cert),
            "username": USER,
            "password_env": "TEST_SMTP_PASSWORD",
        }
        store = mailing(running, tmp_path, server.port, smtp=smtp)
        store.record(match_detection())
        server.wait_for(1)
        wait_until_sent(store)


def test_implicit_tls_delivers(tmp_path: Path, running: list[Notifier]) -> None:
    cert, key = make_certificate(tmp_path)
    with smtp_server(implicit_tls=server_tls_context(cert, key)) as server:
        store = mailing(running, tmp_path, server.port, smtp={"use_tls": True, "cafile": str(cert)})
        store.record(match_detection())
        server.wait_for(1)
        wait_until_sent(store)


def test_wrong_password_keeps_the_alert_pending_with_the_error(
    tmp_path: Path, running: list[Notifier]
) -> None:
    cert, key = make_certificate(tmp_path)
    with smtp_server(starttls=server_tls_context(cert, key), auth=True) as server:
        smtp = {"starttls": True, "cafile": str(cert), "username": USER, "password": "wrong"}
        store = mailing(running, tmp_path, server.port, smtp=smtp)
        store.record(match_detection())
        deadline = time.monotonic() + 10
        while store.outbox.status().last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        status = store.outbox.status()
        assert status.pending == 1
        assert "Authentication" in (status.last_error or "")
        assert server.inbox.messages == []


def test_smtp_outage_delays_alerts_but_never_loses_or_repeats_them(
    tmp_path: Path, running: list[Notifier]
) -> None:
    port = free_port()
    store = mailing(running, tmp_path, port)
    store.record(match_detection("/u/during-outage.jpg"))
    deadline = time.monotonic() + 10
    while store.outbox.status().last_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.outbox.status().pending == 1  # failed at least once, still queued
    time.sleep(0.5)  # several capped retries while the server is down
    with smtp_server(port=port) as server:
        [mail] = server.wait_for(1)
        wait_until_sent(store)
        time.sleep(0.5)
        assert len(server.inbox.messages) == 1
    assert "during-outage.jpg" in mail.get_content()


def test_workers_sharing_a_store_send_each_alert_once(
    tmp_path: Path, running: list[Notifier]
) -> None:
    with smtp_server() as server:
        config = mail_config(tmp_path, server.port)
        stores = [verified_store(config), open_store(config), open_store(config)]
        for store in stores:
            start(running, config, store)
        for n in range(12):
            stores[n % 3].record(match_detection(f"/u/{n}.jpg"))
        wait_until_sent(stores[0])
        time.sleep(0.3)
        bodies = [m.get_content().replace("\r\n", "\n") for m in server.inbox.messages]
    for n in range(12):
        assert sum(f"example.org/u/{n}.jpg\n" in b for b in bodies) == 1, n


def test_claim_left_by_a_dead_sender_expires_and_is_sent(
    tmp_path: Path, running: list[Notifier]
) -> None:
    with smtp_server() as server:
        config = mail_config(tmp_path, server.port)
        store = verified_store(config)
        store.record(match_detection())
        claim = store.outbox.claim(owner="killed-process", window=0, lease=0.5)
        assert claim is not None
        assert not isinstance(claim, float)
        start(running, config, store)
        time.sleep(0.2)
        assert server.inbox.messages == []  # still leased to the dead sender
        server.wait_for(1)
        wait_until_sent(store)
