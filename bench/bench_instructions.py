"""Instructions a non-image request costs, counted by valgrind (callgrind): exact and repeatable.

Usage::

    python bench/bench_instructions.py             # in process, ~1 minute
    python bench/bench_instructions.py --server    # through uvicorn, with cache simulation, ~6 min
    python bench/bench_instructions.py --server --path /page   # the forum thread page instead

Needs valgrind (``apt-get install valgrind``). Timings on a shared 2-core machine move by 5-10%
from run to run; instruction counts do not (about +-0.3%), so this is how a change to the
per-request path is judged before the noisy requests/s runs of ``bench_middleware.py``.

The same Starlette "hello" endpoint as ``bench_middleware.py``, three ways: bare, behind a
pass-through ASGI middleware (the least any response-inspecting middleware costs), and behind
``SafeMediaMiddleware``. Only the requests are counted: instrumentation is switched on after
start-up and warm-up (``callgrind_control -i on``). In process: raw ASGI calls. ``--server``:
uvicorn serving one keep-alive client, user-space instructions and simulated L1 cache misses of
the server process (the kernel's share of each request is not counted, and is the same for all).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

APPS = {"bare": "bare_server", "pass-through": "null_server", "safemedia": "wrapped_server"}


def _child(kind: str, requests: int, path: str = "/text") -> None:
    """Run ``requests`` raw ASGI calls of one app, instrumented only around them."""
    from bench import middleware_apps
    from bench.bench_middleware import _scope

    app = getattr(middleware_apps, APPS[kind])()
    scope = _scope(path)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    async def run(n: int) -> None:
        for _ in range(n):
            await app(dict(scope), receive, send)

    asyncio.run(run(300))
    _instrument(os.getpid(), True)
    asyncio.run(run(requests))
    _instrument(os.getpid(), False)


def _instrument(pid: int, on: bool) -> None:
    _callgrind_control("-i", "on" if on else "off", pid)


def _callgrind_control(option: str, value: str | None, pid: int) -> None:
    command = ["callgrind_control", option, *([value] if value else []), str(pid)]
    subprocess.run(command, check=True, capture_output=True)


def _totals(out: str) -> dict[str, int]:
    """Event totals of a callgrind run (all the files it wrote)."""
    return callgrind_totals(Path(name) for name in glob.glob(out + "*"))


def callgrind_totals(files: Iterable[Path]) -> dict[str, int]:
    """Event totals of callgrind output files: the ``totals:`` line of each, summed (a file's
    ``summary:`` line repeats it, or is meaningless in a part with instrumentation off)."""
    events: list[str] = []
    totals: dict[str, int] = {}
    for name in files:
        for line in name.read_text().splitlines():
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:"):
                for event, value in zip(events, line.split()[1:], strict=False):
                    totals[event] = totals.get(event, 0) + int(value)
    return totals


def in_process(kind: str, requests: int, tmp: Path, path: str = "/text") -> dict[str, int]:
    out = str(tmp / f"in-process.{kind}.out")
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    command += [sys.executable, __file__, "--child", kind, "--requests", str(requests)]
    command += ["--path", path]
    subprocess.run(command, check=True, capture_output=True, env=_env(tmp))
    return _totals(out)


def through_server(kind: str, requests: int, tmp: Path, path: str = "/text") -> dict[str, int]:
    from bench.bench_middleware import _Conn

    out = str(tmp / f"server.{kind}.out")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--cache-sim=yes"]
    command += [f"--callgrind-out-file={out}", sys.executable, "-m", "uvicorn", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--no-access-log", "--log-level", "warning", "--factory"]
    command += [f"bench.middleware_apps:{APPS[kind]}"]
    server = subprocess.Popen(
        command, cwd=ROOT, env=_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"uvicorn under valgrind did not start ({kind})") from None
                time.sleep(1)

        async def fetch(n: int) -> None:
            conn = await _Conn.open(port)
            for _ in range(n):
                await conn.get(path)
            conn.close()

        asyncio.run(fetch(300))
        _instrument(server.pid, True)
        asyncio.run(fetch(requests))
        _callgrind_control("-d", None, server.pid)  # write the counts out
        _instrument(server.pid, False)
    finally:
        server.terminate()
        server.wait(120)
    return _totals(out)


def _env(tmp: Path) -> dict[str, str]:
    return dict(os.environ, SMBENCH_ASSETS=str(tmp), PYTHONPATH=str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", action="store_true", help="through uvicorn (slow)")
    parser.add_argument("--requests", type=int, default=0, help="requests counted per app")
    parser.add_argument(
        "--path",
        default="/text",
        choices=("/text", "/page"),
        help="the 5-byte text endpoint (default) or the 20-post thread page (Jinja2, ~9 kB)",
    )
    parser.add_argument("--child", choices=APPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.requests, args.path)
        return 0
    requests = args.requests or (1000 if args.server else 2000)
    from bench.middleware_apps import make_assets

    rows = []
    with tempfile.TemporaryDirectory(prefix="smbench-") as name:
        tmp = Path(name)
        make_assets(tmp)  # the same app as bench_middleware.py's, with all its images
        for kind in APPS:
            print(f"{kind} ...", file=sys.stderr)
            measure = through_server if args.server else in_process
            rows.append((kind, measure(kind, requests, tmp, args.path)))
    events = ("Ir", "I1mr", "D1mr", "D1mw") if args.server else ("Ir",)
    where = "through uvicorn (server process)" if args.server else "in process"
    print(f"Per {args.path} request, {where}, {requests} requests; ratio to bare in brackets\n")
    print_table(rows, events, requests)
    return 0


def print_table(rows: list[tuple[str, dict[str, int]]], events: tuple[str, ...], n: int) -> None:
    """A Markdown table of ``events`` per request (``n`` requests), with the ratio to the first
    row (the bare app) in brackets."""
    base = rows[0][1]
    print("| app | " + " | ".join(events) + " |")
    print("| --- |" + " ---: |" * len(events))
    for kind, totals in rows:
        cells = [
            f"{totals.get(e, 0) / n:,.0f} ({totals.get(e, 0) / max(base.get(e, 1), 1):.3f})"
            for e in events
        ]
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
