"""Requests/s and CPU time a request of several servers loaded in turn: what the throughput
parts of ``bench_middleware.py`` and ``bench_wsgi.py`` share.

Each arm (the bare app, the wrapped app, a control) runs as several server processes with
different hash seeds (``PYTHONHASHSEED``): one process of an app can land a few percent faster
or slower than another of the same app (where its objects land in memory decides, among other
things, which type-attribute look-ups collide), so an arm of one process measures its layout as
much as its code. Every round loads each server in turn, the order rotating, and an arm's
figure for the round is the mean over its processes; the ratios are taken round by round.

The load comes from ``wrk`` when it is installed (``apt-get install wrk``): a C client, so the
server, not the client, is what the core is spent on, and requests/s follows the server's cost.
Otherwise from a Python asyncio client. The server's CPU time is read at nanosecond resolution
(``clock_getcpuclockid``), all its threads counted; requests/s is wall-clock.

With ``pin`` (on a machine of two or more cores) every server thread runs on the last core and
the load generator (this process and the ``wrk`` it starts) on the others, so that neither is
moved between cores mid-round nor finds its caches filled by the other.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import os
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Load = Callable[[int, float], tuple[float, int]]
"""``load(port, seconds)``: the requests/s reached and the number of requests made."""


@dataclass(frozen=True)
class Served:
    """One running server: its arm (``bare``, ``wrapped``, ...), its port, and the process whose
    CPU time is counted (a gunicorn worker, not its master)."""

    arm: str
    port: int
    pid: int


@dataclass(frozen=True)
class ArmFigures:
    """An arm's medians over the rounds, and its per-round ratios to the ``bare`` arm."""

    rate: float  # requests/s
    cpu: float  # CPU seconds a request
    rate_ratio: float  # median of the rounds' rate / bare rate
    rate_q1: float
    rate_q3: float
    cpu_ratio: float  # median of the rounds' bare CPU / this CPU (above 1: cheaper than bare)
    cpu_q1: float
    cpu_q3: float


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) process ``pid`` has used, to the nanosecond; from
    /proc (1/100 s ticks) where the clock cannot be read."""
    clock = ctypes.c_int()
    spec = _Timespec()
    if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) == 0 and (
        _libc.clock_gettime(clock, ctypes.byref(spec)) == 0
    ):
        return float(spec.tv_sec) + float(spec.tv_nsec) / 1e9
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def asyncio_load(
    client: Callable[..., Coroutine[Any, Any, tuple[float, int]]], *args: object
) -> Load:
    """A :data:`Load` by an asyncio client: ``client(port, seconds, *args)`` run to the end."""

    def load(port: int, seconds: float) -> tuple[float, int]:
        return asyncio.run(client(port, seconds, *args))

    return load


def wrk_load(path: str, connections: int = 4) -> Load:
    """A :data:`Load` by ``wrk`` (one thread, ``connections`` keep-alive connections; it opens
    a new one whenever the server closes one, as gunicorn's sync worker does after each
    response). Whole seconds only: ``wrk -d`` takes no fraction."""

    def load(port: int, seconds: float) -> tuple[float, int]:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        started = time.perf_counter()
        out = subprocess.run(
            [*command, f"http://127.0.0.1:{port}{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        elapsed = time.perf_counter() - started
        found = re.search(r"(\d+) requests in", out)
        if found is None or "Non-2xx" in out or "Socket errors" in out:
            raise RuntimeError(f"wrk failed or saw errors:\n{out}")
        done = int(found.group(1))
        return done / elapsed, done

    return load


LAYOUT_DIR = Path(__file__).resolve().parent / "layout"


def layout_env(seed: int, pythonpath: str) -> dict[str, str]:
    """The environment that makes a server's heap layout depend on ``seed``
    (``bench/layout/sitecustomize.py``), ``pythonpath`` after it on ``PYTHONPATH``."""
    return {
        "SMBENCH_LAYOUT_SEED": str(seed),
        "PYTHONPATH": os.pathsep.join([str(LAYOUT_DIR), pythonpath]),
    }


def add_rotation_arguments(parser: argparse.ArgumentParser, part: str) -> None:
    """The options both throughput benchmarks take for their rotation (``part``: the prefix of
    their help, e.g. ``"part 2"``): ``--instances``, ``--client``, ``--pin``, ``--layout``."""
    parser.add_argument(
        "--instances",
        type=int,
        default=3,
        help=f"{part}: server processes an arm, hash seeds 0, 1, ... (default 3)",
    )
    parser.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk" if have_wrk() else "python",
        help=f"{part}: the load generator (default wrk when installed)",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=can_pin(),
        help=f"{part}: servers on the last core, the load on the others (default: 2+ cores)",
    )
    parser.add_argument(
        "--layout",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"{part}: each server's heap laid out by its own seed (default on)",
    )


def can_pin() -> bool:
    """Whether this machine has the cores to keep servers and the load apart (see ``pin``)."""
    return len(os.sched_getaffinity(0)) >= 2


def pin_apart(servers: Sequence[Served]) -> None:
    """Every thread of every server on the last core this process may use, this process (and
    so the load generators it starts) on the others."""
    cores = sorted(os.sched_getaffinity(0))
    for server in servers:
        for task in Path(f"/proc/{server.pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), {cores[-1]})
    os.sched_setaffinity(0, set(cores[:-1]))


def rotate(
    servers: Sequence[Served], rounds: int, seconds: float, load: Load, *, pin: bool = False
) -> dict[str, ArmFigures]:
    """Load every server for ``seconds`` in each of ``rounds`` rounds, the order rotating; the
    figures of each arm (one of them must be ``bare``). ``pin``: servers and load on separate
    cores (:func:`pin_apart`; threads a server starts later inherit its core)."""
    allowed = os.sched_getaffinity(0)
    try:
        if pin:
            pin_apart(servers)
        return _rotate(servers, rounds, seconds, load)
    finally:
        os.sched_setaffinity(0, allowed)


def _rotate(
    servers: Sequence[Served], rounds: int, seconds: float, load: Load
) -> dict[str, ArmFigures]:
    for server in servers:  # warm-up
        load(server.port, 1.0)
    arms = list(dict.fromkeys(s.arm for s in servers))
    rates: dict[str, list[list[float]]] = {arm: [] for arm in arms}
    cpus: dict[str, list[list[float]]] = {arm: [] for arm in arms}
    for r in range(rounds):
        for arm in arms:
            rates[arm].append([])
            cpus[arm].append([])
        turn = r % len(servers)
        for server in [*servers[turn:], *servers[:turn]]:
            before = process_cpu_seconds(server.pid)
            rate, done = load(server.port, seconds)
            used = process_cpu_seconds(server.pid) - before
            rates[server.arm][r].append(rate)
            cpus[server.arm][r].append(used / max(done, 1))
    rate_of = {arm: [statistics.fmean(x) for x in rates[arm]] for arm in arms}
    cpu_of = {arm: [statistics.fmean(x) for x in cpus[arm]] for arm in arms}
    figures = {}
    for arm in arms:
        rate_ratios = [x / b for x, b in zip(rate_of[arm], rate_of["bare"], strict=True)]
        cpu_ratios = [b / x for x, b in zip(cpu_of[arm], cpu_of["bare"], strict=True)]
        rq1, _, rq3 = _quartiles(rate_ratios)
        cq1, _, cq3 = _quartiles(cpu_ratios)
        figures[arm] = ArmFigures(
            rate=statistics.median(rate_of[arm]),
            cpu=statistics.median(cpu_of[arm]),
            rate_ratio=statistics.median(rate_ratios),
            rate_q1=rq1,
            rate_q3=rq3,
            cpu_ratio=statistics.median(cpu_ratios),
            cpu_q1=cq1,
            cpu_q3=cq3,
        )
    return figures


def _quartiles(values: list[float]) -> list[float]:
    return statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
