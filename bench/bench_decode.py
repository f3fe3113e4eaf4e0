"""Decoding and hashing benchmark: safemedia's pipeline against the naive ones, and its fidelity.

Run: ``.venv/bin/python bench/bench_decode.py`` (after ``pip install -e '.[bench]'``).
Options: ``--rounds N`` (timing rounds, default 7), ``--quick`` (fewer photos and sizes for the
drift table), ``--no-drift``, ``--no-memory``.

Prints, for camera-size JPEGs made from public sample photos (see ``bench/photos.py``):
1. time per image, medians of interleaved rounds: Pillow full decode + ``pdqhash`` (what
   python-threatexchange and HMA do), ``imagehash.phash(Image.open())``, safemedia's full-resolution
   and fast decode + PDQ, and ``Engine.scan`` cold and cached when :mod:`safemedia.engine` exists;
2. PDQ drift of the fast pipeline from the full-resolution hash (p50 / p95 / max bits) over every
   photo and size, next to plain ``pdqhash`` run on a draft-decoded image for comparison;
3. peak memory per image (a fresh process per pipeline, growth of the peak RSS).
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pdqhash
import PIL
from PIL import Image, features

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.photos import CACHE, photo, sources
from safemedia.config import Config
from safemedia.hashing import hash_image
from safemedia.imaging import decode

CAPS: dict[str, Any] = {"max_pixels": 100_000_000, "max_frames": 64}
TIMING_PHOTOS = ("astronaut", "brick", "coffee")
BIG, SMALL = (4000, 3000), (1600, 1200)
DRIFT_SIZES = ((4000, 3000), (3000, 4000), (4032, 3024), (6000, 4000), (2048, 1536), (1600, 1200))
QUICK_SIZES = ((4000, 3000), (1600, 1200))

Pipeline = Callable[[bytes], object]


def naive_pdq(body: bytes) -> object:
    with Image.open(io.BytesIO(body)) as im:
        return pdqhash.compute(np.asarray(im.convert("RGB")))


def naive_phash(body: bytes) -> object:
    with Image.open(io.BytesIO(body)) as im:
        return imagehash.phash(im)


def safemedia_full(body: bytes) -> object:
    return hash_image("pdq", decode(body, **CAPS, full_resolution=True).frames[0])


def safemedia_fast(body: bytes) -> object:
    return hash_image("pdq", decode(body, **CAPS).frames[0])


def safemedia_fast_phash(body: bytes) -> object:
    return hash_image("phash", decode(body, **CAPS).frames[0])


PIPELINES: dict[str, Pipeline] = {
    "naive: Pillow full decode + pdqhash": naive_pdq,
    "naive: imagehash.phash(Image.open())": naive_phash,
    "safemedia full_resolution decode + PDQ": safemedia_full,
    "safemedia fast decode + PDQ": safemedia_fast,
    "safemedia fast decode + pHash": safemedia_fast_phash,
}


def engine_pipelines() -> dict[str, Pipeline]:
    """Engine.scan cold (a new body each call) and cached, if the engine has landed."""
    try:  # imported by name: the engine lands on main separately
        engine_class = importlib.import_module("safemedia.engine").Engine
    except ImportError:
        return {}
    rng = np.random.default_rng(7)
    lines = [
        f"pdq {bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex()} e{i}" for i in range(10_000)
    ]
    list_file = Path(tempfile.mkdtemp()) / "bench-list.txt"
    list_file.write_text("\n".join(lines) + "\n")
    engine: Any = engine_class(Config.from_mapping({"hash_lists": [str(list_file)]}))
    counter = iter(range(10**9))

    def cold(body: bytes) -> object:
        # Bytes after the JPEG's end marker change the SHA-256 (a cache miss), not the pixels.
        return engine.scan(body + next(counter).to_bytes(8, "big"), "image/jpeg")

    def cached(body: bytes) -> object:
        return engine.scan(body, "image/jpeg")

    return {
        "Engine.scan cold (digest + decode + PDQ + lookup, 10k list)": cold,
        "Engine.scan cached (same body again)": cached,
    }


def median_ms(
    pipelines: dict[str, Pipeline], bodies: list[bytes], rounds: int
) -> dict[str, tuple[float, float]]:
    """Interleaved: each round runs every pipeline on every body, in turn. (wall, CPU) medians."""
    for run in pipelines.values():  # warm up: imports, caches of weights, the verdict cache
        for body in bodies:
            run(body)
    wall: dict[str, list[float]] = {name: [] for name in pipelines}
    cpu: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(rounds):
        for name, run in pipelines.items():
            for body in bodies:
                start, start_cpu = time.perf_counter(), time.thread_time()
                run(body)
                cpu[name].append(time.thread_time() - start_cpu)
                wall[name].append(time.perf_counter() - start)
    return {
        name: (1000 * statistics.median(wall[name]), 1000 * statistics.median(cpu[name]))
        for name in pipelines
    }


def timing(rounds: int) -> None:
    pipelines = {**PIPELINES, **engine_pipelines()}
    big = [photo(name, BIG) for name in TIMING_PHOTOS]
    small = [photo(name, SMALL) for name in TIMING_PHOTOS]
    mb = statistics.mean(len(b) for b in big) / 1e6
    kb = statistics.mean(len(b) for b in small) / 1e3
    print(f"\n## Time per image (median of {rounds} interleaved rounds x {len(big)} photos)\n")
    big_ms = median_ms(pipelines, big, rounds)
    small_ms = median_ms(pipelines, small, rounds)
    base_big = big_ms["naive: Pillow full decode + pdqhash"]
    base_small = small_ms["naive: Pillow full decode + pdqhash"]
    print(
        "Wall-clock medians; CPU time of the scanning thread in brackets (steadier when other "
        "processes share the cores). Speed-up = naive PDQ CPU time / this CPU time.\n"
    )
    print(
        f"| pipeline | 12 MP JPEG (~{mb:.1f} MB) | speed-up | 1600x1200 (~{kb:.0f} kB) | speed-up |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in pipelines:
        (bw, bc), (sw, sc) = big_ms[name], small_ms[name]
        print(
            f"| {name} | {bw:.1f} ms ({bc:.1f}) | {base_big[1] / bc:.1f}x "
            f"| {sw:.1f} ms ({sc:.1f}) | {base_small[1] / sc:.1f}x |"
        )


def _distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def _plain_pdq_on_draft(body: bytes, min_long_side: int) -> bytes:
    """The simple alternative: draft so the long side stays >= min_long_side, then pdqhash."""
    with Image.open(io.BytesIO(body)) as im:
        width, height = im.size
        scale = 1
        for s in (8, 4, 2):
            if max(width, height) // s >= min_long_side:
                scale = s
                break
        im.draft("RGB", (width // scale, height // scale))
        bits, _ = pdqhash.compute(np.asarray(im.convert("RGB")))
    return np.packbits(bits).tobytes()


def drift(sizes: tuple[tuple[int, int], ...]) -> None:
    cache_file = CACHE / "full-resolution-pdq.json"
    known: dict[str, str] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    ours: list[int] = []
    plain: list[int] = []
    worst: list[tuple[int, str]] = []
    names = list(sources())
    for name in names:
        for size in sizes:
            body = photo(name, size)
            key = f"{name}-{size[0]}x{size[1]}"
            if key not in known:
                known[key] = safemedia_full_hash(body).hex()
                cache_file.write_text(json.dumps(known))
            full = bytes.fromhex(known[key])
            fast = hash_image("pdq", decode(body, **CAPS).frames[0]).value
            ours.append(_distance(fast, full))
            plain.append(_distance(_plain_pdq_on_draft(body, 800), full))
            worst.append((ours[-1], key))
    print(
        f"\n## PDQ drift from full resolution, bits ({len(ours)} JPEGs: {len(names)} photos x "
        f"{len(sizes)} sizes)\n"
    )
    print("| pipeline | p50 | p95 | max |")
    print("| --- | ---: | ---: | ---: |")
    for label, values in (
        ("safemedia fast (DCT-scaled decode, PDQ of the full-size grid)", ours),
        ("pdqhash on a draft decode, long side >= 800 (for comparison)", plain),
    ):
        p50, p95 = np.percentile(values, [50, 95])
        print(f"| {label} | {p50:.0f} | {p95:.0f} | {max(values)} |")
    worst.sort(reverse=True)
    print("\nLargest safemedia drifts: " + ", ".join(f"{k} {d}" for d, k in worst[:4]))


def safemedia_full_hash(body: bytes) -> bytes:
    return hash_image("pdq", decode(body, **CAPS, full_resolution=True).frames[0]).value


def memory() -> None:
    print("\n## Peak memory growth per 12 MP image (fresh process each, peak RSS)\n")
    print("| pipeline | MiB |")
    print("| --- | ---: |")
    body_path = CACHE / f"astronaut-{BIG[0]}x{BIG[1]}-g4-q92.jpg"
    photo("astronaut", BIG)
    for name in ("naive: Pillow full decode + pdqhash", "safemedia fast decode + PDQ"):
        out = subprocess.run(
            [sys.executable, __file__, "--measure-memory", name, str(body_path)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(f"| {name} | {float(out.stdout.strip()):.0f} |")


def measure_memory(name: str, path: str) -> None:
    body = Path(path).read_bytes()
    tiny = io.BytesIO()
    Image.new("RGB", (64, 48), (9, 99, 199)).save(tiny, "JPEG")
    PIPELINES[name](tiny.getvalue())  # imports and first-call setup outside the measured peak
    before = _peak_rss_kib()
    PIPELINES[name](body)
    print((_peak_rss_kib() - before) / 1024)


def _peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM (ru_maxrss survives exec from a big parent on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def machine() -> None:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    jpeg = features.version("libjpeg_turbo") or features.version("jpg") or "?"
    print("# safemedia decoding and hashing benchmark\n")
    print(
        f"Machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}; "
        f"Python {platform.python_version()}, Pillow {PIL.__version__} (libjpeg-turbo {jpeg}), "
        f"numpy {np.__version__}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-drift", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--measure-memory", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_memory:
        measure_memory(*args.measure_memory)
        return
    machine()
    timing(args.rounds)
    if not args.no_drift:
        drift(QUICK_SIZES if args.quick else DRIFT_SIZES)
    if not args.no_memory:
        memory()


if __name__ == "__main__":
    main()
