"""Run the example forums unmodified on real servers, for the example and browser tests.

Each run copies ``examples/`` into a temporary folder (so uploads and state stay there), prepares
it as ``scripts/demo`` does, starts a real SMTP sink and gunicorn on free 127.0.0.1 ports, and
verifies the alert address through safemedia's own CLI.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.realserver import free_port, serve

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))

import demo_tools  # noqa: E402

__all__ = [
    "EXAMPLES",
    "KINDS",
    "ROOT",
    "Forum",
    "demo_tools",
    "get",
    "running_forum",
]

TARGETS = {"flask": "app:app", "django": "forum_site.wsgi"}

KINDS = ["flask", "django"]


@dataclass(frozen=True, slots=True)
class Forum:
    """A running example forum."""

    kind: str
    url: str
    app_dir: Path
    mail: demo_tools.PrintingHandler

    def wait_for_mail(self, count: int, timeout: float = 20.0) -> None:
        """Wait until the sink holds at least ``count`` messages."""
        deadline = time.monotonic() + timeout
        while len(self.mail.messages) < count:
            if time.monotonic() > deadline:
                subjects = [m["Subject"] for m in self.mail.messages]
                raise AssertionError(f"expected {count} mails within {timeout} s, got {subjects}")
            time.sleep(0.1)


@functools.cache
def gunicorn_command() -> tuple[str, ...]:
    """``python -m gunicorn``, without the control socket that newer versions open in ``$HOME``."""
    command = ("{python}", "-m", "gunicorn")
    probe = [sys.executable, "-m", "gunicorn", "--help"]
    help_text = subprocess.run(probe, capture_output=True, text=True, check=False).stdout
    return (*command, "--no-control-socket") if "--no-control-socket" in help_text else command


def copy_examples(tmp: Path) -> Path:
    """A copy of ``examples/`` without local uploads, state or caches."""
    target = tmp / "examples"
    ignore = shutil.ignore_patterns("var", "__pycache__", "*.png.*", "uploads")
    shutil.copytree(EXAMPLES, target, ignore=ignore)
    return target


@contextlib.contextmanager
def running_forum(kind: str, tmp: Path, *, verify: bool = True) -> Iterator[Forum]:
    """The ``kind`` example forum under gunicorn, with its SMTP sink, until the block ends."""
    examples = copy_examples(tmp)
    app_dir = demo_tools.prepare(kind, examples)
    smtp_port = free_port()
    env = {**os.environ, "SAFEMEDIA_SMTP_PORT": str(smtp_port)}
    env.pop("SAFEMEDIA_CONFIG", None)
    with demo_tools.smtp_sink(port=smtp_port, spool=app_dir / "var" / "mail", echo=False) as mail:
        if verify:
            demo_tools.verify_address(
                demo_tools.DEMO_ADDRESS, app_dir / "var" / "mail", cwd=app_dir, env=env
            )
        command = [*gunicorn_command(), "--bind", "127.0.0.1:{port}"]
        command += ["--workers", "1", "--threads", "4", TARGETS[kind]]
        with serve(command, cwd=app_dir, env=env) as server:
            yield Forum(kind, server.url, app_dir, mail)


def get(url: str) -> httpx.Response:
    """One GET over real HTTP."""
    return httpx.get(url, timeout=30.0)
