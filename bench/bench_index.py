"""Benchmark: Hamming index lookups and hash-list loading, against brute force in the same run.

Run:  .venv/bin/python bench/bench_index.py            (PDQ 1M and 10M, 64-bit 1M, 1M-line load)
      .venv/bin/python bench/bench_index.py --tradeoff (PDQ layouts: bytes/entry against ms)
      .venv/bin/python bench/bench_index.py --quick    (100k entries only: a smoke run)

For each list (uniform random hashes, and clustered ones: groups of near-duplicates as real lists
hold), one query at a time, half near a listed entry and half random; the index and plain numpy
XOR + popcount over all entries are timed interleaved, in several rounds; medians are printed.
"B/entry" is the index's arrays (sum of ``nbytes``: hashes, postings, offsets). Loading: a
1M-line list with and without ids, then, in a fresh process, what the loaded list set holds
(``nbytes`` of every array: hashes, index, list numbers, id offsets; the ids' characters apart)
and the growth of the resident set size (an upper bound: it includes what the allocator keeps
of the parse's temporary objects), also after glibc's ``malloc_trim(0)`` gave those back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from safemedia.config import Config, ListConfig
from safemedia.hashlists import ListManager
from safemedia.index import HammingIndex, layout_for, probe_count, radii

U8 = npt.NDArray[np.uint8]


def uniform(rng: np.random.Generator, n: int, nbytes: int) -> U8:
    return rng.integers(0, 256, (n, nbytes), dtype=np.uint8)


def flip_bits(rng: np.random.Generator, rows: U8, count: int) -> U8:
    """``rows`` with ``count`` random bits flipped in each (with replacement: at most ``count``)."""
    out = rows.copy()
    n, nbytes = rows.shape
    positions = rng.integers(0, nbytes * 8, (n, count))
    for k in range(count):
        col = positions[:, k]
        out[np.arange(n), col // 8] ^= (1 << (col % 8)).astype(np.uint8)
    return out


def clustered(rng: np.random.Generator, n: int, nbytes: int) -> U8:
    """Groups of ~10 near-duplicates (each within about a tenth of the bits of its centre)."""
    centres = uniform(rng, max(1, n // 10), nbytes)
    rows = centres[rng.integers(0, len(centres), n)]
    return flip_bits(rng, rows, nbytes * 8 // 10)


def queries(rng: np.random.Generator, rows: U8, count: int, distance: int) -> U8:
    near = flip_bits(rng, rows[rng.integers(0, len(rows), count // 2)], max(1, distance // 2))
    far = uniform(rng, count - count // 2, rows.shape[1])
    return np.concatenate([near, far])


def brute(words: npt.NDArray[np.uint64], query: npt.NDArray[np.uint64], distance: int) -> int:
    """Plain numpy: XOR every entry with the query, popcount, sum, compare."""
    dist = np.bitwise_count(words ^ query).sum(axis=1)
    return int(np.count_nonzero(dist <= distance))


def timed(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def bench_lookup(
    label: str, rows: U8, distance: int, rounds: int, per_round: int, rng: np.random.Generator
) -> dict[str, str]:
    start = time.perf_counter()
    index, _ = HammingIndex.build(rows, multi_index=True)
    build = time.perf_counter() - start
    words = np.ascontiguousarray(rows).view(np.uint64)
    qs = queries(rng, rows, per_round, distance)
    qwords = qs.view(np.uint64)
    ours: list[float] = []
    base: list[float] = []
    brute_every = max(1, per_round // 8)  # brute force is slow: time a subset of the queries
    for _ in range(rounds):
        for i in range(len(qs)):
            ours.append(timed(index.search, qs[i : i + 1], distance))
            if i % brute_every == 0:
                base.append(timed(brute, words, qwords[i], distance))
    # correctness spot check against brute force
    for i in range(0, len(qs), brute_every):
        assert len(index.search(qs[i : i + 1], distance)) == brute(words, qwords[i], distance)
    med, med_base = statistics.median(ours), statistics.median(base)
    return {
        "case": label,
        "entries": f"{len(rows):,}",
        "d": str(distance),
        "layout": f"{index.tables}x{index.chunk_bits}-bit",
        "index ms": f"{med * 1e3:.3f}",
        "p90 ms": f"{np.percentile(ours, 90) * 1e3:.3f}",
        "brute ms": f"{med_base * 1e3:.1f}",
        "speed-up": f"{med_base / med:.0f}x",
        "B/entry": f"{index.memory_bytes / len(rows):.1f}",
        "build s": f"{build:.1f}",
    }


_RSS_PROBE = """
import ctypes, gc, json, os, sys
from pathlib import Path
from safemedia.config import Config, ListConfig
from safemedia.hashlists import ListManager

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

gc.collect()
before = rss()
manager = ListManager(Config(hash_lists=(ListConfig(path=Path(sys.argv[1])),)))
gc.collect()
held = manager.current()
grown = rss() - before
ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: give back what the parse freed
trimmed = rss() - before
text = held.id_text_bytes() if hasattr(held, "id_text_bytes") else 0
print(json.dumps([grown, trimmed, held.memory_bytes(), text]))
"""


def held_memory(path: Path, n: int) -> dict[str, str]:
    """Memory of a loaded list, measured in a fresh process: the arrays the list set holds
    (sum of ``nbytes``: hashes, index, list numbers, id offsets) and the growth of the RSS."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(path)], check=True, capture_output=True, text=True
    )
    grown, trimmed, held, text = json.loads(out.stdout)
    return {
        "held B/entry": f"{held / n:.1f}",
        "id chars B/entry": f"{text / n:.1f}",
        "RSS growth B/entry": f"{grown / n:.1f}",
        "after malloc_trim": f"{trimmed / n:.1f}",
    }


def bench_load(n: int, rounds: int, rng: np.random.Generator) -> list[dict[str, str]]:
    rows = clustered(rng, n, 32)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for ids in (True, False):
            path = Path(tmp) / "pdq.txt"
            with path.open("w") as f:
                for i, row in enumerate(rows):
                    f.write(f"pdq {row.tobytes().hex()}{f' entry-{i}' if ids else ''}\n")
            config = Config(hash_lists=(ListConfig(path=path),))
            times, cpu = [], []
            for _ in range(rounds):
                start = time.process_time()
                times.append(timed(ListManager, config))
                cpu.append(time.process_time() - start)
            results.append(
                {
                    "lines": f"{n:,}",
                    "ids": "entry-N" if ids else "none",
                    "file MB": f"{path.stat().st_size / 1e6:.0f}",
                    "load s": f"{statistics.median(times):.2f}",
                    "CPU s": f"{statistics.median(cpu):.2f}",
                    **held_memory(path, n),
                }
            )
    return results


TRADEOFF = {
    1_000_000: [(16, 16), (16, 13), (17, 12), (18, 11), (18, 10)],
    10_000_000: [(20, 12), (20, 11), (21, 10), (20, 10)],
}


def bench_tradeoff(
    n: int, layouts: list[tuple[int, int]], rounds: int, per_round: int, rng: np.random.Generator
) -> list[dict[str, str]]:
    """PDQ lookups at d=31 with several ``(chunk_bits, tables)`` layouts, timed interleaved."""
    rows = uniform(rng, n, 32)
    qs = queries(rng, rows, per_round, 31)
    indexes = [HammingIndex.build(rows, chunk_bits=b, tables=t)[0] for b, t in layouts]
    times: list[list[float]] = [[] for _ in layouts]
    for _ in range(rounds):
        for i in range(len(qs)):
            for k, index in enumerate(indexes):
                times[k].append(timed(index.search, qs[i : i + 1], 31))
    words = rows.view(np.uint64)
    for i in range(0, len(qs), max(1, len(qs) // 8)):
        expected = brute(words, qs[i].view(np.uint64), 31)
        assert all(len(index.search(qs[i : i + 1], 31)) == expected for index in indexes)
    out = []
    for (bits, tables), index, ms in zip(layouts, indexes, times, strict=True):
        probes = sum(probe_count(r, bits) for r in radii(31, tables) if r >= 0)
        out.append(
            {
                "entries": f"{n:,}",
                "layout": f"{tables}x{bits}-bit"
                + (" *" if layout_for(n, 256) == (bits, tables) else ""),
                "probes": str(probes),
                "candidates": f"{n * probes / (1 << bits) / 1000:.1f}k",
                "B/entry": f"{index.memory_bytes / n:.1f}",
                "index ms": f"{statistics.median(ms) * 1e3:.3f}",
                "p90 ms": f"{np.percentile(ms, 90) * 1e3:.2f}",
            }
        )
    return out


def table(rows: list[dict[str, str]]) -> str:
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}
    lines = [" | ".join(k.ljust(widths[k]) for k in keys)]
    lines.append("-|-".join("-" * widths[k] for k in keys))
    lines += [" | ".join(r[k].rjust(widths[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100k entries only")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=40, help="queries per round")
    parser.add_argument(
        "--tradeoff", action="store_true", help="only: PDQ layouts' memory against lookup time"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    if args.tradeoff:
        for n, layouts in TRADEOFF.items():
            if args.quick:
                n //= 10
            print(table(bench_tradeoff(n, layouts, args.rounds, args.queries, rng)), flush=True)
        return
    big = [100_000] if args.quick else [1_000_000, 10_000_000]
    small = 100_000 if args.quick else 1_000_000
    results = []
    for n in big:
        for kind, make in (("uniform", uniform), ("clustered", clustered)):
            rows = make(rng, n, 32)
            results.append(bench_lookup(f"pdq {kind}", rows, 31, args.rounds, args.queries, rng))
            del rows
    for kind, make in (("uniform", uniform), ("clustered", clustered)):
        rows = make(rng, small, 8)
        results.append(bench_lookup(f"64-bit {kind}", rows, 8, args.rounds, args.queries, rng))
    print(table(results))
    print()
    print(table(bench_load(small, 3, rng)))


if __name__ == "__main__":
    main()
