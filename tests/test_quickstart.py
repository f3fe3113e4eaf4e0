"""``scripts/demo``, the quick start, run as a new user runs it: the forum comes up, the listed
pattern is refused, the alert mail is printed, and Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.example_apps import ROOT, get
from tests.realserver import free_port

DEMO_STAMP = ROOT / ".venv" / ".safemedia-demo-installed"


class Output:
    """Collects a process's output lines on a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                self.lines.append(line)

    def close(self) -> None:
        self._thread.join(timeout=10)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not printed within {timeout} s:\n{self.text}")
            time.sleep(0.1)


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (scripts/demo: the SMTP sink and gunicorn's master)."""
    listing = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(word) for word in listing.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("kind", ["flask", "django"])
def test_scripts_demo_blocks_the_pattern_prints_the_alert_and_stops_on_ctrl_c(kind: str) -> None:
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip("scripts/demo uses the repository's .venv; run this through scripts/test")
    # scripts/test installed the test extra, which holds everything the demo extra does.
    DEMO_STAMP.touch()
    port, smtp_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "SMTP_PORT": str(smtp_port)}
    for name in [n for n in env if n.startswith("SAFEMEDIA_")]:
        del env[name]
    process = subprocess.Popen(
        ["bash", "scripts/demo", kind],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    output = Output(process)
    try:
        output.wait_for(f"serving the {kind} forum on http://127.0.0.1:{port}", timeout=90)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                page = get(url + "/")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert page.status_code == 200
        assert get(url + "/uploads/landscape.png").status_code == 200
        assert get(url + "/uploads/listed-pattern.png").status_code == 451
        output.wait_for("Subject: safemedia: 1 image blocked", timeout=30)
        assert "/uploads/listed-pattern.png" in output.text
    finally:
        children = _children(process.pid)
        # What Ctrl-C in the terminal does: SIGINT to the foreground process group, which holds
        # only the script (it puts what it starts in process groups of their own).
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            for pid in [process.pid, *children]:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
    output.close()
    assert "demo: stopped" in output.text
    assert len(children) == 2, children  # the SMTP sink and gunicorn
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children), "scripts/demo left processes running"
    assert "SIGKILL" not in output.text, "a gunicorn worker did not stop in time"
