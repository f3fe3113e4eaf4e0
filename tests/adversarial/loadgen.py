"""A bounded load generator for 127.0.0.1 (httpx, asyncio) and a process-tree memory probe.

Usage::

    resources = [Resource("/page/1", "page"), Resource("/static/a.jpg", "clean", sha256)...]
    result = run_load(server.url, resources, total=3000, concurrency=32, block_status=451)
    assert result.failures() == []

Every response is checked as it arrives: a page must be 2xx, a clean image 200 and byte-identical
(SHA-256 of the body), a listed image must get the block status; any 5xx or transport error is
a failure. The request count is fixed in advance, so the run always ends by itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

Kind = Literal["page", "clean", "listed"]


@dataclass(frozen=True, slots=True)
class Resource:
    """One URL path the app serves, what it is, and (for clean images) the expected SHA-256."""

    path: str
    kind: Kind
    sha256: str = ""


@dataclass
class LoadResult:
    """What a load run saw."""

    requests: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    wrong_bytes: list[str] = field(default_factory=list)
    not_blocked: list[str] = field(default_factory=list)
    wrongly_blocked: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def failures(self) -> list[str]:
        """Every broken promise, as short messages (empty when the run held)."""
        out: list[str] = []
        for label, items in (
            ("5xx", self.server_errors),
            ("clean image not byte-identical", self.wrong_bytes),
            ("listed image not blocked", self.not_blocked),
            ("clean response blocked", self.wrongly_blocked),
            ("transport error", self.transport_errors),
        ):
            if items:
                out.append(f"{len(items)} x {label}, e.g. {items[:3]}")
        return out

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "requests_per_second": round(self.requests / self.seconds, 1) if self.seconds else 0,
            "statuses": dict(sorted(self.statuses.items())),
            "by_kind": dict(sorted(self.by_kind.items())),
            "p50_ms": round(self.percentile(0.50) * 1000, 1),
            "p99_ms": round(self.percentile(0.99) * 1000, 1),
            "failures": self.failures(),
        }


async def _worker(
    client: httpx.AsyncClient,
    plan: list[Resource],
    result: LoadResult,
    block_status: int,
) -> None:
    while plan:
        res = plan.pop()
        start = time.perf_counter()
        try:
            response = await client.get(res.path)
        except httpx.HTTPError as exc:
            result.transport_errors.append(f"{res.path}: {type(exc).__name__}: {exc}")
            continue
        result.latencies.append(time.perf_counter() - start)
        result.requests += 1
        result.statuses[response.status_code] += 1
        result.by_kind[f"{res.kind} {response.status_code}"] += 1
        status = response.status_code
        if status >= 500:
            result.server_errors.append(f"{res.path}: {status}")
        elif res.kind == "listed":
            if status != block_status:
                result.not_blocked.append(f"{res.path}: {status}")
        elif status == block_status:
            result.wrongly_blocked.append(res.path)
        elif res.kind == "clean":
            digest = hashlib.sha256(response.content).hexdigest()
            if status != 200 or digest != res.sha256:
                result.wrong_bytes.append(f"{res.path}: {status} sha256 {digest[:12]}")


async def _run(
    base_url: str,
    resources: list[Resource],
    total: int,
    concurrency: int,
    block_status: int,
    seed: int,
) -> LoadResult:
    rng = random.Random(seed)
    plan = [resources[i % len(resources)] for i in range(total)]
    rng.shuffle(plan)
    result = LoadResult()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0) as client:
        start = time.perf_counter()
        await asyncio.gather(
            *(_worker(client, plan, result, block_status) for _ in range(concurrency))
        )
        result.seconds = time.perf_counter() - start
    return result


def run_load(
    base_url: str,
    resources: list[Resource],
    *,
    total: int,
    concurrency: int,
    block_status: int = 451,
    seed: int = 0,
) -> LoadResult:
    """Send ``total`` GETs over ``concurrency`` connections, in a shuffled but fixed order."""
    return asyncio.run(_run(base_url, resources, total, concurrency, block_status, seed))


# --- memory of a server's process tree ---------------------------------------------------------


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (e.g. gunicorn's master and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_kib(pid: int) -> int:
    """The resident set size of ``pid`` in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(root: int) -> dict[int, int]:
    """RSS in KiB of ``root`` and each descendant."""
    return {pid: rss_kib(pid) for pid in process_tree(root)}
