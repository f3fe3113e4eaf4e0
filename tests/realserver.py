"""Run a real server (uvicorn, gunicorn, ...) as a subprocess on a free 127.0.0.1 port.

Usage::

    from tests.realserver import serve

    command = ["{python}", "-m", "uvicorn", "tests.apps.asgi_app:app", "--port", "{port}"]
    with serve(command) as server:
        httpx.get(server.url + "/a.jpg")
        ...                     # server.output() is what it printed so far (for messages)

``{port}`` and ``{python}`` in the command are filled in. The server runs in its own process group
with the repository root as working directory (so ``tests.*`` modules import) and is stopped with
SIGTERM, then SIGKILL, when the block ends. If it exits or does not accept connections within
``timeout`` seconds, :class:`ServerError` carries its output. The output is printed at the end so
pytest shows it with a failing test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


UVICORN = (
    "{python}",
    "-m",
    "uvicorn",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
    "--no-access-log",
)
"""``serve([*UVICORN, "module:app"])`` runs an ASGI app under uvicorn."""


class ServerError(RuntimeError):
    """The server did not start; the message holds its output."""


@dataclass
class Server:
    """A running server: its base URL, port and process."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _accepting(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def serve(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    stop_timeout: float = 10.0,
) -> Iterator[Server]:
    """Start ``command`` on a free port, yield a :class:`Server` once it accepts connections."""
    port = free_port()
    argv = [
        part.replace("{port}", str(port)).replace("{python}", sys.executable) for part in command
    ]
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [full_env.get("PYTHONPATH")])]
    )
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env.update(env or {})
    with tempfile.NamedTemporaryFile(prefix="realserver-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=str(cwd or ROOT),
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while not _accepting(port):
            if process.poll() is not None:
                raise ServerError(f"{argv!r} exited with {process.returncode}:\n{server.output()}")
            if time.monotonic() > deadline:
                raise ServerError(f"{argv!r} not accepting after {timeout}s:\n{server.output()}")
            time.sleep(0.05)
        yield server
    finally:
        _stop(process, stop_timeout)
        output = server.output()
        if output:
            print(f"--- output of {' '.join(argv)} ---\n{output}")
        log_path.unlink(missing_ok=True)


def _stop(process: subprocess.Popen[bytes], stop_timeout: float) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(stop_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Workers left in the group (gunicorn) go too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
