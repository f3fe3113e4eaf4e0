"""The operator's commands on a real store file and a real SMTP server: verify, events, unblock."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from safemedia.cli import main
from safemedia.config import Config
from safemedia.store import Store, open_store
from tests.smtp_support import SmtpServer, smtp_server
from tests.store_support import SHA_A, SHA_B, match_detection

TO = "ops@example.org"


def write_config(tmp_path: Path, smtp_port: int = 1) -> Path:
    path = tmp_path / "site" / "safemedia.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'[safemedia]\nnotify_to = "{TO}"\nstore = "sqlite:///state/safemedia.db"\n'
        f'[safemedia.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\ntimeout = 5\n',
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def store_for(config_path: Path) -> Store:
    return open_store(Config.from_file(config_path, env=False))


def test_operator_verifies_the_address_with_the_mailed_code_then_tests_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server: SmtpServer
    with smtp_server() as server:
        config = str(write_config(tmp_path, server.port))
        status, out, _ = run(capsys, "email", "verify", TO, "--config", config)
        assert status == 0, out
        [mail] = server.wait_for(1)
        found = re.search(r"safemedia email confirm (\d{8})", mail.get_content())
        assert found is not None
        assert found.group(1) not in (tmp_path / "site/state/safemedia.db").read_bytes().decode(
            "latin-1"
        )
        assert run(capsys, "email", "confirm", "00000000", "--config", config)[0] == 2
        status, out, _ = run(capsys, "email", "confirm", found.group(1), "--config", config)
        assert (status, out.splitlines()[0]) == (0, f"Verified {TO}.")
        status, out, _ = run(capsys, "email", "test", "--config", config)
        assert status == 0, out
        _, test_mail = server.wait_for(2)
    assert test_mail["Subject"] == "safemedia: test message"
    assert store_for(Path(config)).is_verified(TO)


def test_email_test_refuses_an_unverified_address_and_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    status, _, err = run(capsys, "email", "test", "--config", config)
    assert status == 2
    assert f"safemedia email verify {TO}" in err


def test_verify_reports_an_unreachable_smtp_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path, smtp_port=1))
    status, _, err = run(capsys, "email", "verify", TO, "--config", config)
    assert status == 2
    assert "127.0.0.1:1" in err


def test_events_list_filter_and_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path)
    monkeypatch.setenv("SAFEMEDIA_CONFIG", str(config))  # no --config: the variable is used
    store = store_for(config)
    store.record(match_detection("/u/1.jpg"))
    store.record(match_detection("/u/\x1b[2Jevil.jpg", sha256=SHA_B))
    status, out, _ = run(capsys, "events", "--json")
    events = json.loads(out)
    assert [e["path"] for e in events] == ["/u/1.jpg", "/u/\x1b[2Jevil.jpg"]
    assert events[0]["sha256"] == SHA_A
    status, out, _ = run(capsys, "events")
    assert "\x1b" not in out  # a URL cannot drive the operator's terminal
    assert "\\x1b[2Jevil.jpg" in out
    assert "list 'known' entry 'entry-17', pdq distance 4" in out
    assert json.loads(run(capsys, "events", "--since", "1h", "--json")[1]) != []
    assert json.loads(run(capsys, "events", "--since", "2999-01-01", "--json")[1]) == []
    status, out, _ = run(capsys, "events", "show", str(events[0]["id"]))
    assert status == 0
    assert SHA_A in out
    assert re.search(r"URL blocked now:\s+yes", out)
    assert f"safemedia unblock {events[0]['id']}" in out
    assert "CyberTipline" in out
    assert run(capsys, "events", "show", "999")[0] == 2
    assert run(capsys, "events", "--since", "yesterday-ish")[0] == 2


def test_unblock_lifts_the_block_and_allows_the_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    store = store_for(Path(config))
    store.record(match_detection("/u/1.jpg"))
    store.record(match_detection("/u/2.jpg", sha256=SHA_B))
    with pytest.raises(SystemExit):  # --reason is required
        main(["unblock", "example.org/u/1.jpg", "--config", config])
    capsys.readouterr()
    status, out, _ = run(
        capsys, "unblock", "example.org/u/1.jpg", "--reason", "a cat", "--config", config
    )
    assert status == 0
    assert "Unblocked example.org/u/1.jpg" in out
    assert not store.is_blocked("example.org/u/1.jpg")
    assert store.is_allowed(SHA_A)
    assert store.audit_trail()[-1].reason == "a cat"
    blocked = json.loads(run(capsys, "blocked", "--json", "--config", config)[1])
    assert [b["url"] for b in blocked] == ["example.org/u/2.jpg"]
    assert "example.org/u/2.jpg" in run(capsys, "blocked", "--config", config)[1]
    assert run(capsys, "unblock", "nowhere", "--reason", "x", "--config", config)[0] == 2
    status, out, _ = run(capsys, "audit", "--config", config)
    assert status == 0
    assert "unblock  example.org/u/1.jpg  a cat" in out
    [entry] = json.loads(run(capsys, "audit", "--json", "--config", config)[1])
    assert (entry["action"], entry["detail"]["sha256"]) == ("unblock", SHA_A)


def test_missing_config_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "events", "--config", str(tmp_path / "none.toml"))
    assert status == 2
    assert "config file not found" in err
