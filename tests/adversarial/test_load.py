"""Load against real servers with several workers: nothing fails, nothing leaks, nothing rescans.

A bounded mix (pages, 50 distinct clean images, the listed ones) from many concurrent clients on
127.0.0.1, under uvicorn (Starlette app) and gunicorn (Flask app, gthread), 3 workers each.
CI sends ``ADVERSARIAL_LOAD_REQUESTS`` (default 1,200) per server; ``scripts/load`` sends 10,000.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.adversarial.evidence import env_int, record
from tests.adversarial.loadgen import Resource, run_load, tree_rss_kib
from tests.adversarial.servers import KINDS, app_server
from tests.adversarial.site import LISTED, Site, write_config
from tests.realserver import Server

pytest.importorskip("safemedia.engine")

WORKERS = 3
PAGES = 20


def resources(site: Site) -> list[Resource]:
    """Pages, every clean image, and the listed images (each listed URL a few times)."""
    out = [Resource(f"/page/{n}", "page") for n in range(PAGES)]
    out += [Resource(f"/static/{name}", "clean", sha) for name, sha in site.clean.items()]
    out += [Resource(f"/static/{name}", "listed") for name in LISTED]
    return out


def worker_stats(server: Server, workers: int, tries: int = 400) -> dict[int, dict[str, Any]]:
    """``/_stats`` of every worker process: asked on fresh connections until all have answered."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(tries):
        with httpx.Client(base_url=server.url, timeout=10) as client:
            doc = client.get("/_stats").json()
        seen[doc["pid"]] = doc
        if len(seen) >= workers:
            break
    return seen


def rss_of_workers(server: Server, pids: set[int]) -> dict[int, int]:
    tree = tree_rss_kib(server.process.pid)
    return {pid: kib for pid, kib in tree.items() if pid in pids}


@pytest.fixture(params=KINDS)
def loaded_server(
    request: pytest.FixtureRequest, site: Site, tmp_path: Path
) -> Iterator[tuple[str, Server]]:
    kind: str = request.param
    config = write_config(site, tmp_path / kind)
    with app_server(kind, site, config, workers=WORKERS) as server:
        yield kind, server


def test_load_gives_no_5xx_blocks_every_listed_image_and_scans_each_image_once_per_worker(
    loaded_server: tuple[str, Server], site: Site
) -> None:
    kind, server = loaded_server
    total = env_int("ADVERSARIAL_LOAD_REQUESTS", 1200)
    concurrency = env_int("ADVERSARIAL_LOAD_CONCURRENCY", 32)
    mix = resources(site)
    # Warm-up: a quarter of the requests, so every worker has seen (and cached) most images.
    warm = run_load(server.url, mix, total=total // 4, concurrency=concurrency, seed=1)
    pids = set(worker_stats(server, WORKERS))
    rss_after_warmup = rss_of_workers(server, pids)
    started = time.perf_counter()
    main = run_load(server.url, mix, total=total - total // 4, concurrency=concurrency, seed=2)
    seconds = time.perf_counter() - started
    rss_at_end = rss_of_workers(server, pids)
    stats = worker_stats(server, WORKERS)
    distinct_images = len(site.clean) + len(LISTED)
    computed = {
        pid: s["engine"]["scans"] - s["engine"]["cache_hits"] - s["engine"]["coalesced"]
        for pid, s in stats.items()
    }
    growth = {pid: (rss_at_end[pid] - rss_after_warmup[pid]) // 1024 for pid in rss_at_end}
    record(
        f"load-{kind}",
        {
            "server": f"{kind}, {WORKERS} workers",
            "requests": warm.requests + main.requests,
            "concurrency": concurrency,
            "main_phase": main.summary(),
            "main_phase_seconds": round(seconds, 2),
            "scans_computed_per_worker": computed,
            "scan_calls_per_worker": {pid: s["engine"]["scans"] for pid, s in stats.items()},
            "distinct_images": distinct_images,
            "rss_mib_after_warmup": {pid: kib // 1024 for pid, kib in rss_after_warmup.items()},
            "rss_mib_at_end": {pid: kib // 1024 for pid, kib in rss_at_end.items()},
        },
    )
    assert warm.failures() == []
    assert main.failures() == []
    assert warm.requests + main.requests == total
    assert len(stats) == WORKERS, f"only {len(stats)} workers answered /_stats"
    for pid, count in computed.items():
        assert count <= distinct_images, f"worker {pid} computed {count} scans"
    assert sum(computed.values()) >= len(site.clean), "the workers scanned fewer images than seen"
    for pid, mib in growth.items():
        assert mib < 32, f"worker {pid} grew by {mib} MiB after warm-up"
