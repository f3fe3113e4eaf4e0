"""Middleware overhead: SafeMediaMiddleware against the same app without it, in one run.

Usage::

    python bench/bench_middleware.py            # full run, a few minutes on 2 cores
    python bench/bench_middleware.py --quick    # fewer, shorter rounds

Measures (medians of interleaved rounds; figures go to docs/performance.md):

1. in-process added latency, raw ASGI calls (no TestClient): a non-image response, and cached
   0.18 MB and 3.8 MB JPEGs, the 3.8 MB one both whole (one body message) and in 64 KiB parts
   (as FileResponse sends files) (compared with the SHA-256 digest time of their bodies, on
   this thread and in a worker thread, and with a control middleware that only holds and
   digests the body), the worker-thread hop, the largest digest on the loop, and the longest
   step the event loop runs while serving the 3.8 MB JPEG (a ticker task's gaps);
2. requests/s and server CPU a request through uvicorn for a non-image endpoint, bare app vs
   wrapped app, with the bare app again (control) and a pass-through middleware in the same
   rotation, each arm several processes (``--instances``), the load from ``wrk`` when installed
   (:mod:`bench.server_rotation`); ``--page text``
   (default): a 5-byte text response, the least work an app can do, so the ratio shows the
   middleware's whole cost; ``--page page``: a 20-post forum thread page rendered with Jinja2;
3. p50/p99 latency of small non-image requests through uvicorn while 16 clients fetch distinct
   large JPEGs (verdict cache off, so every fetch is decoded and hashed; sent in 64 KiB parts
   without a pause, digested on the event loop as they arrive, with a loop turn every 1 MiB;
   ``--large whole``: one message, digested on the loop in 1 MiB slices with a loop turn
   between slices), and the same load on the bare app as the baseline;
4. 50 concurrent requests for one uncached image: how many scans were computed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.realserver import serve  # noqa: E402

from bench.middleware_apps import (  # noqa: E402
    LARGE_COUNT,
    bare_app,
    make_assets,
    wrapped_app,
)
from bench.server_rotation import (  # noqa: E402
    ArmFigures,
    Served,
    add_rotation_arguments,
    asyncio_load,
    layout_env,
    rotate,
    wrk_load,
)
from safemedia.http import plan_response  # noqa: E402
from safemedia.runtime import LOOP_DIGEST_BYTES  # noqa: E402

CLOCK = time.process_time
"""In-process figures are CPU time of this process (all its threads: the worker pool too), so
other processes on a shared machine do not count; waiting for a CPU does not either."""

Message = MutableMapping[str, Any]
App = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


# --- 1. in process ------------------------------------------------------------------------------


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        # 2.4: a send after a disconnect raises OSError, so StreamingResponse does not also
        # poll receive() for a disconnect (the bench's receive never waits: it would spin)
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"accept", b"*/*"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }


async def _time_calls(app: App, path: str, n: int) -> float:
    """Mean CPU seconds per call over ``n`` raw ASGI calls."""
    scope = _scope(path)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    started = CLOCK()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (CLOCK() - started) / n


async def _longest_step(app: App, path: str, n: int) -> float:
    """The longest the event loop's thread ran between two turns of a ticker task (CPU seconds
    of that thread, so other processes do not count) while ``app`` served ``path`` ``n`` times,
    a yield between calls: the longest one step of serving it holds the loop."""
    scope = _scope(path)
    longest = 0.0
    running = True

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    async def ticker() -> None:
        nonlocal longest
        last = time.thread_time()
        while running:
            await asyncio.sleep(0)
            now = time.thread_time()
            longest = max(longest, now - last)
            last = now

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    for _ in range(n):
        await app(dict(scope), receive, send)
        await asyncio.sleep(0)
    running = False
    await ticking
    return longest


def _digest_time(body: bytes, n: int) -> float:
    started = CLOCK()
    for _ in range(n):
        hashlib.sha256(body).digest()
    return (CLOCK() - started) / n


def _parts(wrapped: Any, body: bytes, photo: bytes, rounds: int) -> dict[str, list[float]]:
    """Where a cached image's added time goes: the check itself, the worker-thread hop, the
    digest in a worker thread (round trip), and the largest digest made on the event loop."""
    runtime = wrapped.runtime
    headers = [(b"content-type", b"image/jpeg"), (b"content-length", str(len(body)).encode())]
    rq = runtime.plan_request("GET", "bench", "/small", "", [])
    rp = plan_response(rq, 200, headers, runtime.config)
    runtime.conclude(rq, rp, 200, headers, body)

    async def hops(n: int, *args: Any) -> float:
        started = CLOCK()
        for _ in range(n):
            await runtime.run_blocking(*args)
        return (CLOCK() - started) / n

    at_limit = bytes(LOOP_DIGEST_BYTES)
    out: dict[str, list[float]] = {
        "conclude": [],
        "hop": [],
        "small_worker_digest": [],
        "photo_worker_digest": [],
        "limit_digest": [],
    }
    for _ in range(rounds):
        started = CLOCK()
        for _ in range(200):
            runtime.conclude(rq, rp, 200, headers, body)
        out["conclude"].append((CLOCK() - started) / 200)
        out["hop"].append(asyncio.run(hops(200, int)))
        out["small_worker_digest"].append(asyncio.run(hops(200, _sha256, body)))
        out["photo_worker_digest"].append(asyncio.run(hops(20, _sha256, photo)))
        out["limit_digest"].append(_digest_time(at_limit, 200))
    return out


def _sha256(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def _holding_digest(app: App) -> App:
    """A control: a middleware that only holds a response's body parts, digests each as it
    arrives, and sends them on at the end (what any checking middleware must at least do)."""

    async def control(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        held: list[Message] = []
        digest = hashlib.sha256()

        async def hold(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
                return
            held.append(message)
            digest.update(message.get("body", b""))
            if not message.get("more_body", False):
                digest.hexdigest()
                for m in held:
                    await send(m)

        await app(scope, receive, hold)

    return control


def in_process(assets: Path, rounds: int, quick: bool) -> dict[str, float]:
    """Median seconds per call, bare and wrapped, interleaved; digest times in the same rounds."""
    bare = bare_app(assets)
    wrapped = wrapped_app(assets, cache=True)
    control = _holding_digest(bare_app(assets))
    bodies = {k: (assets / f"{k}.jpg").read_bytes() for k in ("photo", "small")}
    bodies["parts"] = bodies["photo"]  # the same JPEG, sent in 64 KiB parts
    calls = {
        "text": 500 if quick else 3000,
        "small": 100 if quick else 500,
        "photo": 20 if quick else 60,
        "parts": 20 if quick else 60,
    }

    async def run() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for path in ("/photo", "/small", "/parts"):
            await _time_calls(wrapped, path, 3)  # warm the verdict cache
        for r in range(rounds):
            pairs: list[tuple[App, str]] = [(bare, "b"), (wrapped, "w")]
            for kind, n in calls.items():
                these = [*pairs, (control, "c")] if kind in ("photo", "parts") else pairs
                for app, tag in these if r % 2 else these[::-1]:
                    out.setdefault(f"{kind}_{tag}", []).append(
                        await _time_calls(app, f"/{kind}", n)
                    )
                if kind in bodies:
                    out.setdefault(f"{kind}_digest", []).append(_digest_time(bodies[kind], n))
            for kind in ("photo", "parts"):
                for app, tag in pairs:
                    out.setdefault(f"{kind}_{tag}_step", []).append(
                        await _longest_step(app, f"/{kind}", 5 if quick else 10)
                    )
        return out

    samples = asyncio.run(run())
    samples.update(_parts(wrapped, bodies["small"], bodies["photo"], rounds))
    med = {k: statistics.median(v) for k, v in samples.items()}
    for kind, body in bodies.items():
        med[f"{kind}_bytes"] = float(len(body))
    return med


# --- HTTP client (raw asyncio sockets, keep-alive) ----------------------------------------------


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        return cls(reader, writer)

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        remaining = length
        while remaining:
            chunk = await self.reader.read(min(remaining, 1 << 20))
            if not chunk:
                raise ConnectionError("closed mid-body")
            remaining -= len(chunk)
        return status

    def close(self) -> None:
        self.writer.close()


async def _throughput_count(
    port: int, seconds: float, connections: int, path: str = "/text"
) -> tuple[float, int]:
    """Requests/s for ``path`` with ``connections`` keep-alive clients, and their number."""
    done = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        conn = await _Conn.open(port)
        try:
            while time.perf_counter() < stop:
                await conn.get(path)
                done += 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return done / (time.perf_counter() - started), done


def _uvicorn(
    app: str,
    assets: Path,
    tree: Path | None = None,
    seed: int | None = None,
    layout: int | None = None,
) -> Any:
    """uvicorn serving ``app``; from the source tree ``tree`` (its ``src`` and ``bench``) when
    given, else this one; with ``PYTHONHASHSEED=seed`` when given, and its heap laid out by the
    seed ``layout`` (:func:`bench.server_rotation.layout_env`) when given."""
    command = ["{python}", "-m", "uvicorn", "--port", "{port}", "--host", "127.0.0.1"]
    command += ["--no-access-log", "--log-level", "warning", "--factory", app]
    env = {"SMBENCH_ASSETS": str(assets)}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), str(tree)])
    if seed is not None:
        env["PYTHONHASHSEED"] = str(seed)
    if layout is not None:
        env |= layout_env(layout, env.get("PYTHONPATH", str(ROOT)))
    return serve(command, env=env, cwd=tree or ROOT)


THROUGHPUT_SERVERS = {
    "bare": "bare_server",
    "wrapped": "wrapped_server",
    "control": "bare_server",  # the bare app again: how far apart two equal arms land
    "null": "null_server",  # an ASGI middleware that only passes send through: any wrapper's cost
}


def throughput(
    assets: Path,
    rounds: int,
    seconds: float,
    path: str = "/text",
    other: Path | None = None,
    instances: int = 3,
    client: str = "wrk",
    pin: bool = False,
    layout: bool = True,
) -> dict[str, ArmFigures]:
    """Requests/s and server CPU a request of ``path`` for each arm of THROUGHPUT_SERVERS, each
    arm ``instances`` uvicorn processes (hash seeds 0, 1, ...), loaded in turn
    (:func:`bench.server_rotation.rotate`). ``other``: the root of another source tree of
    safemedia (the code before a change, say), whose wrapped app is one more arm, ``other``.
    ``client``: ``wrk`` or ``python``; ``pin``: servers and load on separate cores;
    ``layout``: each server's heap laid out by a seed of its own."""
    apps = dict(THROUGHPUT_SERVERS)
    if other is not None:
        apps["other"] = "wrapped_server"
    load = wrk_load(path) if client == "wrk" else asyncio_load(_throughput_count, 4, path)
    with contextlib.ExitStack() as stack:
        servers: list[Served] = []
        for seed in range(instances):
            for arm, app in apps.items():
                tree = other if arm == "other" else None
                server = stack.enter_context(
                    _uvicorn(
                        f"bench.middleware_apps:{app}",
                        assets,
                        tree,
                        seed,
                        len(servers) if layout else None,
                    )
                )
                servers.append(Served(arm, server.port, server.process.pid))
        return rotate(servers, rounds, seconds, load, pin=pin)


def _throughput_rows(
    tp: dict[str, ArmFigures], path: str, instances: int, client: str
) -> list[tuple[str, str, str]]:
    rows = []
    what_page = {"/text": "non-image", "/page": "thread page"}[path]
    how = f"{instances} process{'es' if instances > 1 else ''} an arm, {client}"
    for tag, what in (
        ("bare", "bare app"),
        ("wrapped", "with SafeMediaMiddleware"),
        ("other", "SafeMediaMiddleware of the other tree"),
        ("control", "control: the bare app again"),
        ("null", "a pass-through ASGI middleware"),
    ):
        if tag not in tp:
            continue
        f = tp[tag]
        target = ">= 0.95" if tag == "wrapped" else ""
        rows.append(
            (
                f"uvicorn {what_page} ({how}), {what}: req/s; per-round ratio (quartiles)",
                f"{f.rate:.0f}; {f.rate_ratio:.3f} ({f.rate_q1:.3f}-{f.rate_q3:.3f})",
                target,
            )
        )
        rows.append(
            (
                f"uvicorn {what_page} ({how}), {what}: server CPU a request; "
                "per-round bare/this (quartiles)",
                f"{f.cpu * 1e6:.1f} us; {f.cpu_ratio:.3f} ({f.cpu_q1:.3f}-{f.cpu_q3:.3f})",
                target,
            )
        )
    return rows


# --- 3. latency under image load -----------------------------------------------------------------


async def _latency_under_load(
    port: int, seconds: float, load: bool, large: str = "/large-parts/"
) -> tuple[list[float], int]:
    stop = time.perf_counter() + seconds
    images = 0

    async def fetcher(i: int) -> None:
        nonlocal images
        conn = await _Conn.open(port)
        try:
            while time.perf_counter() < stop:
                await conn.get(f"{large}{i % LARGE_COUNT}")
                images += 1
        finally:
            conn.close()

    async def prober() -> list[float]:
        conn = await _Conn.open(port)
        latencies = []
        try:
            await asyncio.sleep(0.3)  # let the image load build up
            while time.perf_counter() < stop:
                t = time.perf_counter()
                await conn.get("/text")
                latencies.append(time.perf_counter() - t)
                await asyncio.sleep(0.005)
        finally:
            conn.close()
        return latencies

    tasks = [fetcher(i) for i in range(16)] if load else []
    probed = asyncio.ensure_future(prober())
    await asyncio.gather(probed, *tasks)
    return probed.result(), images


def latency(assets: Path, seconds: float, large: str) -> dict[str, float]:
    """p50/p99 of small requests, idle and under the image load, bare server and wrapped.
    ``large``: the path prefix of the large images (``/large-parts/`` or ``/large/``)."""
    out: dict[str, float] = {}
    for tag, app in (("bare", "bare_server"), ("sm", "uncached_server")):
        with _uvicorn(f"bench.middleware_apps:{app}", assets) as server:
            asyncio.run(_latency_under_load(server.port, 1.0, load=False))  # warm-up
            idle, _ = asyncio.run(_latency_under_load(server.port, seconds / 2, load=False))
            busy, images = asyncio.run(
                _latency_under_load(server.port, seconds, load=True, large=large)
            )
        for phase, values in (("idle", idle), ("busy", busy)):
            values.sort()
            out[f"{tag}_{phase}_p50"] = values[len(values) // 2]
            out[f"{tag}_{phase}_p99"] = values[min(len(values) - 1, int(len(values) * 0.99))]
        out[f"{tag}_images_per_s"] = images / seconds
    return out


# --- 4. single flight ----------------------------------------------------------------------------


def single_flight(assets: Path) -> dict[str, int]:
    app = wrapped_app(assets, cache=True)
    engine: Any = app.runtime.engine
    before = engine.stats()

    async def one() -> int:
        status = 0

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(_scope("/fresh"), receive, send)
        return status

    async def run() -> list[int]:
        return await asyncio.gather(*(one() for _ in range(50)))

    statuses = asyncio.run(run())
    after = engine.stats()
    delta = {k: after[k] - before[k] for k in ("scans", "cache_hits", "coalesced", "errors")}
    computed = delta["scans"] - delta["cache_hits"] - delta["coalesced"] - delta["errors"]
    return {"ok": statuses.count(200), "computed": computed, **delta}


# --- report --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument(
        "--parts", default="1234", help="which measurements to run (default 1234: all)"
    )
    parser.add_argument(
        "--large",
        choices=("parts", "whole"),
        default="parts",
        help="part 3: large JPEGs sent in 64 KiB parts (default) or as one body message",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="part 2: rounds of the rotation (default 9, --quick 5); more, shorter rounds "
        "(with --seconds) ride out a noisy machine better",
    )
    parser.add_argument(
        "--seconds", type=float, default=0.0, help="part 2: seconds a server is measured a round"
    )
    parser.add_argument(
        "--page",
        choices=("text", "page"),
        default="text",
        help="part 2: the 5-byte text endpoint (default) or a 20-post forum thread page (HTML)",
    )
    parser.add_argument(
        "--compare-with",
        type=Path,
        metavar="TREE",
        help="part 2: also the wrapped app of another source tree (e.g. a worktree of main)",
    )
    add_rotation_arguments(parser, "part 2")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    load_start = _load()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="smbench-") as tmp:
        assets = Path(tmp)
        print("making synthetic images ...", file=sys.stderr)
        make_assets(assets)
        os.environ["SMBENCH_ASSETS"] = str(assets)
        if "1" in args.parts:
            print("1. in process ...", file=sys.stderr)
            rows += _in_process_rows(in_process(assets, rounds, args.quick))
        if "2" in args.parts:
            print("2. throughput through uvicorn ...", file=sys.stderr)
            path = f"/{args.page}"
            seconds = args.seconds or (1.0 if args.quick else 2.0)
            tp = throughput(
                assets,
                args.rounds or rounds + 2,
                seconds,
                path,
                args.compare_with,
                args.instances,
                args.client,
                args.pin,
                args.layout,
            )
            rows += _throughput_rows(tp, path, args.instances, args.client)
        if "3" in args.parts:
            print("3. latency under image load ...", file=sys.stderr)
            large = "/large-parts/" if args.large == "parts" else "/large/"
            rows += _latency_rows(latency(assets, 4.0 if args.quick else 12.0, large), args.large)
        if "4" in args.parts:
            print("4. single flight ...", file=sys.stderr)
            sf = single_flight(assets)
            rows.append(
                (
                    "50 concurrent requests, one uncached image",
                    f"{sf['ok']} ok, {sf.get('computed', 0)} scan computed",
                    "1 scan",
                )
            )
    rows.append(("load average (1 min) at start / end", f"{load_start} / {_load()}", ""))
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | value | target |")
    print(f"| {'-' * width} | ---: | --- |")
    for name, value, target in rows:
        print(f"| {name.ljust(width)} | {value} | {target} |")
    return 0


def _size_label(ip: dict[str, float], kind: str) -> str:
    """``3.84 MB`` (and how it is sent, for the parts case) for a table row."""
    size = f"{ip[f'{kind}_bytes'] / 1e6:.2f} MB"
    return size + " in 64 KiB parts" if kind == "parts" else size


def _in_process_rows(ip: dict[str, float]) -> list[tuple[str, str, str]]:
    us = 1e6
    text_added = (ip["text_w"] - ip["text_b"]) * us
    rows = [
        ("non-image, in process: bare app (CPU)", f"{ip['text_b'] * us:.1f} us", ""),
        ("non-image, in process: added (CPU)", f"{text_added:+.1f} us", "<= 20 us"),
    ]
    for kind in ("small", "photo", "parts"):
        added = (ip[f"{kind}_w"] - ip[f"{kind}_b"]) * us
        digest = ip[f"{kind}_digest"] * us
        size = _size_label(ip, kind)
        rows += [
            (f"cached {size} JPEG: added (CPU)", f"{added:+.0f} us", ""),
            (f"cached {size} JPEG: SHA-256 of the body", f"{digest:.0f} us", ""),
            (f"cached {size} JPEG: added minus digest", f"{added - digest:+.0f} us", "<= 100 us"),
        ]
    for kind, what in (("photo", "whole"), ("parts", "in 64 KiB parts")):
        rows += [
            (
                f"3.84 MB {what}: control that holds and digests it (minus the digest)",
                f"{(ip[f'{kind}_c'] - ip[f'{kind}_b'] - ip[f'{kind}_digest']) * us:+.0f} us",
                "",
            ),
            (
                f"3.84 MB {what}: safemedia minus the control",
                f"{(ip[f'{kind}_w'] - ip[f'{kind}_c']) * us:+.0f} us",
                "",
            ),
            (
                f"3.84 MB {what}: longest event-loop step (loop CPU), bare / safemedia",
                f"{ip[f'{kind}_b_step'] * us:.0f} / {ip[f'{kind}_w_step'] * us:.0f} us",
                "",
            ),
        ]
    rows += [
        (
            f"cached {ip['small_bytes'] / 1e6:.2f} MB JPEG: Runtime.conclude, no thread hop",
            f"{ip['conclude'] * us:.0f} us",
            "",
        ),
        ("one hop to the worker pool and back (CPU)", f"{ip['hop'] * us:.0f} us", ""),
    ]
    for kind in ("small", "photo", "parts"):
        worker = ip[f"{'photo' if kind == 'parts' else kind}_worker_digest"] * us
        added = (ip[f"{kind}_w"] - ip[f"{kind}_b"]) * us
        size = _size_label(ip, kind)
        rows += [
            (f"cached {size} JPEG: SHA-256 in a worker thread, round trip", f"{worker:.0f} us", ""),
            (f"cached {size} JPEG: added minus worker digest", f"{added - worker:+.0f} us", ""),
        ]
    rows.append(
        (
            f"largest digest on the event loop ({LOOP_DIGEST_BYTES // 1024} KiB)",
            f"{ip['limit_digest'] * us:.0f} us",
            "",
        )
    )
    return rows


def _latency_rows(lat: dict[str, float], large: str) -> list[tuple[str, str, str]]:
    return [
        ("large JPEGs sent", "in 64 KiB parts" if large == "parts" else "whole", ""),
        (
            "small requests, idle, bare: p50 / p99",
            _ms(lat["bare_idle_p50"], lat["bare_idle_p99"]),
            "",
        ),
        (
            "small requests, idle, safemedia: p50 / p99",
            _ms(lat["sm_idle_p50"], lat["sm_idle_p99"]),
            "",
        ),
        (
            "small requests, 16 clients on large JPEGs, bare: p50 / p99",
            _ms(lat["bare_busy_p50"], lat["bare_busy_p99"]),
            "",
        ),
        (
            "small requests, 16 clients on large JPEGs, safemedia: p50 / p99",
            _ms(lat["sm_busy_p50"], lat["sm_busy_p99"]),
            "p99 < 50 ms",
        ),
        ("large JPEGs served meanwhile, bare", f"{lat['bare_images_per_s']:.1f} /s", ""),
        ("large JPEGs scanned meanwhile, safemedia", f"{lat['sm_images_per_s']:.1f} /s", ""),
    ]


def _load() -> str:
    """The 1-minute load average: this machine is shared, so each run says how busy it was."""
    return f"{os.getloadavg()[0]:.1f}"


def _ms(p50: float, p99: float) -> str:
    return f"{p50 * 1e3:.1f} / {p99 * 1e3:.1f} ms"


if __name__ == "__main__":
    raise SystemExit(main())
