"""The durable store's costs: ``is_blocked`` / ``is_allowed`` lookups and ``record`` commits.

Usage::

    python bench/bench_store.py            # about a minute on 2 cores
    python bench/bench_store.py --quick

Each figure is the median of interleaved rounds, next to a baseline measured in the same run:
a bare ``sqlite3`` primary-key SELECT on one open connection (for the lookups) and a bare
``INSERT`` + ``COMMIT`` in WAL mode with ``synchronous=FULL`` (for ``record``). Then four
processes record at once into one file: commits per second and lock errors that reached the
caller (must be 0). Figures go to docs/performance.md ("Durable store").
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.store_support import match_detection  # noqa: E402

from safemedia.config import Config  # noqa: E402
from safemedia.lookups import StoreSet  # noqa: E402
from safemedia.store import Store, StoreError, open_store  # noqa: E402


def per_call_us(fn: Callable[[int], object], calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - start) / calls * 1e6


def _record(store: Store, prefix: str, i: int) -> None:
    store.record(match_detection(f"{prefix}{i}.jpg"))


def _baseline_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID")
    conn.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    return conn


def _worker(url: str, name: str, count: int, out: multiprocessing.Queue[tuple[int, float]]) -> None:
    store = open_store(Config.from_mapping({"store": url}))
    errors = 0
    slowest = 0.0
    for i in range(count):
        started = time.perf_counter()
        try:
            store.record(match_detection(f"/{name}/{i}.jpg"))
        except StoreError:
            errors += 1
        slowest = max(slowest, time.perf_counter() - started)
    out.put((errors, slowest))


def concurrent_records(folder: Path, processes: int, count: int) -> tuple[float, int, float]:
    """(commits/s, errors, slowest commit s) with ``processes`` writers into one new file."""
    url = f"sqlite:///{folder / f'concurrent-{time.monotonic_ns()}.db'}"
    open_store(Config.from_mapping({"store": url})).close()
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[tuple[int, float]] = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(url, f"p{n}", count, queue)) for n in range(processes)
    ]
    started = time.perf_counter()
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    return processes * count / elapsed, sum(e for e, _ in results), max(s for _, s in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    lookups = 2_000 if args.quick else 10_000
    commits = 50 if args.quick else 200

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = open_store(Config.from_mapping({"store": f"sqlite:///{folder / 'state.db'}"}))
        for i in range(1000):
            store.record(match_detection(f"/seed/{i}.jpg"))
        base = _baseline_db(folder / "baseline.db")
        base.executemany(
            "INSERT INTO t VALUES (?, ?)", [(f"example.org/seed/{i}.jpg", "x") for i in range(1000)]
        )

        def bare_lookup(i: int) -> object:
            return base.execute("SELECT 1 FROM t WHERE k = ?", (f"x/{i}",)).fetchone()

        def bare_commit(i: int) -> object:
            base.execute("BEGIN IMMEDIATE")
            base.execute("INSERT INTO d (body) VALUES (?)", ("x" * 600,))
            return base.execute("COMMIT")

        in_memory = StoreSet(store, "blocked_urls", store.is_blocked, ttl=1.0)
        rows: dict[str, list[float]] = {
            k: [] for k in ("bare", "blocked", "memory", "allowed", "bc", "rec")
        }
        for r in range(rounds):
            rows["bare"].append(per_call_us(bare_lookup, lookups))
            rows["blocked"].append(per_call_us(lambda i: store.is_blocked(f"x/{i}"), lookups))
            rows["memory"].append(per_call_us(lambda i: in_memory(f"x/{i}"), lookups))
            rows["allowed"].append(per_call_us(lambda i: store.is_allowed(f"{i:064x}"), lookups))
            rows["bc"].append(per_call_us(bare_commit, commits))
            prefix = f"/r{r}/"
            rows["rec"].append(per_call_us(functools.partial(_record, store, prefix), commits))
        med = {k: statistics.median(v) for k, v in rows.items()}
        rate, errors, slowest = concurrent_records(folder, 4, 100 if args.quick else 300)

    print("| operation | median | baseline (same run) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| `is_blocked(url)` | {med['blocked']:.1f} us | bare sqlite3 PK SELECT "
        f"{med['bare']:.1f} us | {med['blocked'] / med['bare']:.1f}x |"
    )
    print(
        "| request path: blocked URLs in memory (`lookups.StoreSet`), 1,000 blocked | "
        f"{med['memory']:.2f} us"
        f" | bare sqlite3 PK SELECT {med['bare']:.1f} us | {med['memory'] / med['bare']:.2f}x |"
    )
    print(
        f"| `is_allowed(sha256)` | {med['allowed']:.1f} us | bare sqlite3 PK SELECT "
        f"{med['bare']:.1f} us | {med['allowed'] / med['bare']:.1f}x |"
    )
    print(
        f"| `record(detection)` (detection + block + outbox, one commit) | "
        f"{med['rec'] / 1000:.2f} ms | bare INSERT + COMMIT {med['bc'] / 1000:.2f} ms | "
        f"{med['rec'] / med['bc']:.1f}x |"
    )
    print(
        f"| 4 processes recording at once | {rate:.0f} commits/s, slowest {slowest * 1000:.0f} "
        f"ms | | lock errors: {errors} |"
    )


if __name__ == "__main__":
    main()
