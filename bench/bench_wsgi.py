"""WSGI middleware overhead, in process: the same apps with and without SafeMediaMiddleware.

Usage::

    python bench/bench_wsgi.py            # ~3 minutes on 2 cores
    python bench/bench_wsgi.py --quick    # fewer, shorter rounds

Calls the apps the way a WSGI server does (environ, start_response, iterate, close), no HTTP.
Rounds are interleaved (bare, wrapped, bare, ...) and each figure is the median of the rounds'
mean time per call, as CPU time of the calling thread (``time.thread_time``), so that other
processes on a shared machine do not count; the middleware does all its work on that thread.
The runtime is the real one (Engine with a 10,000-entry PDQ list of random hashes, an in-memory
SQLite store), so each request pays the real blocked-URL lookup.

1. a plain WSGI text response: bare vs wrapped (target: <= 20 us added);
2. the same through Flask (``SafeMedia(app)``);
3. a cached 1600x1200 JPEG: added latency vs the SHA-256 digest time of its body
   (target: <= digest + 100 us);
4. requests/s and the worker's CPU time a request through gunicorn, bare vs ``SafeMedia(app)``
   (target: within 5%), of the Flask text endpoint (hello world) and of a forum thread page
   (``--paths``; :mod:`bench.wsgi_apps`): one gthread worker (4 threads) and one sync worker
   (which closes each connection), 4 clients (``wrk`` when installed). The bare app is
   measured again in the same rotation as a control, and each arm is several servers with
   different hash seeds (:mod:`bench.server_rotation`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
from wsgiref.util import setup_testing_defaults

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from flask import Flask  # noqa: E402
from tests.realserver import serve  # noqa: E402
from tests.synthetic import picture  # noqa: E402

from bench.bench_middleware import _throughput_count  # noqa: E402
from bench.server_rotation import (  # noqa: E402
    ArmFigures,
    Served,
    add_rotation_arguments,
    asyncio_load,
    layout_env,
    rotate,
    wrk_load,
)
from safemedia import Config  # noqa: E402
from safemedia.contrib.flask import SafeMedia  # noqa: E402
from safemedia.runtime import Runtime  # noqa: E402
from safemedia.wsgi import SafeMediaMiddleware  # noqa: E402


def _jpeg(seed: int, size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    picture(seed, size).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _runtime(root: Path) -> Runtime:
    rng = np.random.default_rng(7)
    lines = [f"pdq {rng.bytes(32).hex()} random-{i}" for i in range(10_000)]
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    config = Config.from_mapping({"hash_lists": [str(root / "list.txt")], "store": "memory:"})
    return Runtime(config)


def _plain_app(photo: bytes) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/photo.jpg":
            start_response("200 OK", [("Content-Type", "image/jpeg")])
            return [photo]
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]

    return app


def _flask_app() -> Flask:
    app = Flask("bench")

    @app.get("/text")
    def text() -> str:
        return "hello"

    return app


def _environ(path: str) -> dict[str, Any]:
    env: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "HTTP_HOST": "bench"}
    env["HTTP_ACCEPT"] = "*/*"
    setup_testing_defaults(env)
    return env


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def _time_calls(app: WSGIApplication, path: str, n: int) -> float:
    """Mean CPU seconds of this thread per call over ``n`` calls, as a server makes them."""
    template = _environ(path)
    started = time.thread_time()
    for _ in range(n):
        result = app(dict(template), _start_response)
        for _chunk in result:
            pass
        close: Callable[[], None] | None = getattr(result, "close", None)
        if close is not None:
            close()
    return (time.thread_time() - started) / n


def _digest_time(body: bytes, n: int) -> float:
    started = time.thread_time()
    for _ in range(n):
        hashlib.sha256(body).digest()
    return (time.thread_time() - started) / n


def measure(rounds: int, calls: int) -> dict[str, float]:
    """Median seconds per call for every variant, interleaved rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        runtime = _runtime(Path(tmp))
        photo = _jpeg(5, (1600, 1200))
        plain = _plain_app(photo)
        wrapped = SafeMediaMiddleware(plain, runtime=runtime)
        flask_app = _flask_app()
        flask_bare = flask_app.wsgi_app
        SafeMedia(flask_app, runtime=runtime)
        variants: dict[str, tuple[WSGIApplication, str, int]] = {
            "plain bare": (plain, "/text", calls),
            "plain wrapped": (wrapped, "/text", calls),
            "flask bare": (flask_bare, "/text", calls // 4),
            "flask wrapped": (flask_app.wsgi_app, "/text", calls // 4),
            "image bare": (plain, "/photo.jpg", calls // 20),
            "image wrapped": (wrapped, "/photo.jpg", calls // 20),
        }
        _time_calls(wrapped, "/photo.jpg", 3)  # the first scan fills the verdict cache
        samples: dict[str, list[float]] = {name: [] for name in [*variants, "sha256"]}
        for _ in range(rounds):
            for name, (app, path, n) in variants.items():
                samples[name].append(_time_calls(app, path, max(n, 1)))
            samples["sha256"].append(_digest_time(photo, max(calls // 20, 1)))
        runtime.close()
        result = {name: statistics.median(values) for name, values in samples.items()}
        result["photo bytes"] = len(photo)
        return result


def _worker_pid(master: int) -> int:
    """The one worker process of a gunicorn master (its child)."""
    deadline = time.monotonic() + 10  # a worker may still be (re)starting on a loaded machine
    while True:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) == 1:
            return int(children[0])
        if time.monotonic() > deadline:
            raise RuntimeError(f"expected one gunicorn worker, found {children}")
        time.sleep(0.1)


async def _fresh_connections(
    port: int, seconds: float, clients: int, path: str = "/text"
) -> tuple[float, int]:
    """Requests/s for ``path`` with ``clients`` clients, a new connection per request (the
    sync worker closes each one), and their number."""
    done = 0
    stop = time.perf_counter() + seconds
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode()

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            response = await reader.read()  # to the end: the server closes
            writer.close()
            if not response.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected response {response[:40]!r}")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started), done


PythonLoad = Callable[[int, float, int, str], Coroutine[Any, Any, tuple[float, int]]]
"""``load(port, seconds, clients, path)``: requests/s and how many were made."""

WORKERS: dict[str, tuple[list[str], PythonLoad]] = {
    "gthread": (["--worker-class", "gthread", "--threads", "4"], _throughput_count),
    "sync": (["--worker-class", "sync"], _fresh_connections),
}


def throughput(
    worker: str,
    rounds: int,
    seconds: float,
    other: Path | None = None,
    instances: int = 3,
    client: str = "wrk",
    path: str = "/text",
    pin: bool = False,
    decompose: bool = False,
    layout: bool = True,
) -> dict[str, ArmFigures]:
    """Requests/s and the worker's CPU time a request through gunicorn for the bare and the
    wrapped Flask app and for the bare app again (the control: what two equal arms differ by on
    this machine right now), each arm ``instances`` gunicorn servers of one worker (hash seeds
    0, 1, ...), loaded in turn (:func:`bench.server_rotation.rotate`). ``other``: the root of
    another source tree of safemedia (a version before a change, say); its wrapped app is one
    more arm, ``other`` (its ``bench.wsgi_apps`` must serve ``path``). ``client``: ``wrk`` or
    ``python`` (4 clients either way); ``pin``: servers and load on separate cores;
    ``decompose``: two more arms, ``loaded`` and ``null`` (see :mod:`bench.wsgi_apps`);
    ``layout``: each server's heap laid out by a seed of its own
    (:func:`bench.server_rotation.layout_env`).
    """
    options, python_load = WORKERS[worker]
    command = ["{python}", "-m", "gunicorn", "--bind", "127.0.0.1:{port}", "--workers", "1"]
    command += [*options, "--log-level", "warning"]
    apps = {"bare": "bare()", "wrapped": "wrapped()", "control": "bare()"}
    if decompose:
        apps |= {"loaded": "loaded()", "null": "null()"}
    if other is not None:
        apps["other"] = "wrapped()"
    load = wrk_load(path) if client == "wrk" else asyncio_load(python_load, 4, path)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        _runtime(Path(tmp)).close()  # writes list.txt
        toml = Path(tmp) / "safemedia.toml"
        toml.write_text('[safemedia]\nhash_lists = ["list.txt"]\nstore = "memory:"\n')
        servers: list[Served] = []
        for seed in range(instances):
            for tag, app in apps.items():
                env = {"SAFEMEDIA_CONFIG": str(toml), "PYTHONHASHSEED": str(seed)}
                pythonpath = str(ROOT)
                if tag == "other" and other is not None:
                    pythonpath = os.pathsep.join([str(other / "src"), str(other)])
                    env["PYTHONPATH"] = pythonpath
                if layout:
                    env |= layout_env(len(servers), pythonpath)
                cwd = other if tag == "other" else ROOT
                s = stack.enter_context(
                    serve([*command, f"bench.wsgi_apps:{app}"], env=env, cwd=cwd)
                )
                servers.append(Served(tag, s.port, _worker_pid(s.process.pid)))
        return rotate(servers, rounds, seconds, load, pin=pin)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument(
        "--server-rounds", type=int, default=0, help="gunicorn rounds (default 12, quick 6)"
    )
    parser.add_argument(
        "--only", choices=("process", "servers"), help="only the in-process or the gunicorn part"
    )
    parser.add_argument(
        "--compare-with",
        type=Path,
        metavar="TREE",
        help="also serve the wrapped app from this safemedia source tree (e.g. a `git archive` "
        "of the version before a change)",
    )
    add_rotation_arguments(parser, "gunicorn part")
    parser.add_argument(
        "--paths",
        default="/text,/page",
        help="gunicorn part: the endpoints, comma-separated (default /text,/page)",
    )
    parser.add_argument(
        "--decompose",
        action="store_true",
        help="gunicorn part: also a runtime-loaded bare app and a do-nothing middleware",
    )
    args = parser.parse_args(argv)
    rounds, calls = (5, 2_000) if args.quick else (15, 20_000)
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), f"load {os.getloadavg()}\n")
    if args.only != "servers":
        in_process(rounds, calls)
    if args.only != "process":
        rounds = args.server_rounds or (6 if args.quick else 12)
        paths = [p for p in args.paths.split(",") if p]
        seconds = 1.0 if args.quick else 2.0
        servers(
            rounds,
            seconds,
            args.compare_with,
            args.instances,
            args.client,
            paths,
            args.pin,
            args.decompose,
            args.layout,
        )
    return 0


def in_process(rounds: int, calls: int) -> None:
    """Print the in-process table."""
    m = measure(rounds, calls)
    us = 1e6

    def row(label: str, bare: float, wrapped: float, target: str) -> None:
        added = (wrapped - bare) * us
        print(f"| {label} | {bare * us:.2f} | {wrapped * us:.2f} | {added:+.2f} | {target} |")

    print(f"WSGI in process, median of {rounds} interleaved rounds, microseconds a request\n")
    print("| response | bare app | with SafeMediaMiddleware | added | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    row("plain WSGI, text", m["plain bare"], m["plain wrapped"], "<= 20")
    row("Flask, text", m["flask bare"], m["flask wrapped"], "<= 20")
    digest = m["sha256"] * us
    row(
        f"cached JPEG, {m['photo bytes'] / 1e6:.1f} MB",
        m["image bare"],
        m["image wrapped"],
        f"<= digest {digest:.0f} + 100",
    )


def servers(
    rounds: int,
    seconds: float,
    other: Path | None = None,
    instances: int = 3,
    client: str = "wrk",
    paths: Iterable[str] = ("/text",),
    pin: bool = False,
    decompose: bool = False,
    layout: bool = True,
) -> None:
    """Print the gunicorn table."""
    pinned = ", worker and load pinned to separate cores" if pin else ""
    pinned += ", heap layouts seeded" if layout else ""
    print(f"\nFlask through gunicorn (1 worker, 4 clients by {client}{pinned}), {rounds}")
    load = os.getloadavg()[0]
    print(f"rounds of {seconds:.0f} s, {instances} servers an arm (hash seeds 0-{instances - 1}),")
    print(f"the order rotating; load average {load:.1f} at the start; per-round ratios to the")
    print("bare arm, median (quartiles); CPU: bare / this\n")
    print(
        "| path | worker | arm | req/s | req/s ratio | worker CPU a request | CPU ratio | target |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | --- |")
    for path in paths:
        for worker in WORKERS:
            figures = throughput(
                worker, rounds, seconds, other, instances, client, path, pin, decompose, layout
            )
            for arm, f in figures.items():
                label = f"wrapped, {other}" if arm == "other" else arm
                print(
                    f"| {path} | {worker} | {label} | {f.rate:.0f} "
                    f"| {f.rate_ratio:.3f} ({f.rate_q1:.3f}-{f.rate_q3:.3f}) "
                    f"| {f.cpu * 1e6:.1f} us "
                    f"| {f.cpu_ratio:.3f} ({f.cpu_q1:.3f}-{f.cpu_q3:.3f}) "
                    f"| {'>= 0.95' if arm == 'wrapped' else ''} |"
                )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    raise SystemExit(main())
