"""Scan hostile bodies with a real :class:`safemedia.engine.Engine` in a child process.

The child runs with warnings as errors (``-W error``), like a strict host app (or this test suite)
would: a Pillow warning about a corrupt file must still end as a verdict.
A child process so that its peak memory is the scan's own (not pytest's) and a crash, hang or
runaway allocation cannot take the test run down. The child resets the kernel's peak-RSS mark
before every case (``/proc/self/clear_refs``), so each case's peak is measured on its own.

Parent side: :func:`run_job`. Child side: ``python -m tests.adversarial.scanproc JOB.json``,
which prints one JSON report on the last line of its stdout.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import importlib.util
import json
import logging
import os
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent  # the repository: ``tests.*`` imports
MAX_SECONDS = 2.0  # the bounds every case must meet (the tests assert them)
MAX_PEAK_KIB = 512 * 1024
ADDRESS_SPACE_LIMIT = 6 << 30  # a safety net for the shared machine, far above the 512 MB bound


def _release_freed_memory() -> None:
    """Give freed heap back to the kernel, so one case's leftovers do not count in the next."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_kib() -> int:
    """Peak resident set since the last reset (VmHWM), else since the process started."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class _DecodeAndHash:
    """The decode + hash path alone (``target: decode``), for before the Engine exists."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def scan(self, body: bytes, content_type: str | None = None) -> Any:
        from safemedia import hashing, imaging
        from safemedia.verdict import Verdict, VerdictKind

        sha256 = hashlib.sha256(body).hexdigest()
        try:
            decoded = imaging.decode(
                body, max_pixels=self.config.max_pixels, max_frames=self.config.max_frames
            )
        except imaging.DecodeError as exc:
            kind = VerdictKind.UNINSPECTABLE
            return Verdict(kind=kind, sha256=sha256, reason=exc.reason, detail=exc.detail)
        for frame in decoded.frames:
            hashing.pdq_dihedral(frame)
            hashing.hash_image("phash", frame)
        return Verdict(kind=VerdictKind.CLEAN, sha256=sha256)

    def close(self) -> None:
        pass


class _Runner:
    """Scans bodies one at a time, keeping the figures a report needs."""

    def __init__(self, config: dict[str, Any], crash_dir: Path, target: str) -> None:
        from safemedia.config import Config

        built = Config.from_mapping(config)
        if target == "engine":
            from safemedia.engine import Engine  # type: ignore[import-not-found, unused-ignore]

            self.engine: Any = Engine(built)
        else:
            self.engine = _DecodeAndHash(built)
        self.crash_dir = crash_dir
        self.cases = 0
        self.max_seconds = 0.0
        self.slowest = ""
        self.max_peak_kib = 0
        self.last_peak_kib = 1 << 30  # trim before the first case too
        self.biggest = ""
        self.kinds: dict[str, int] = {}
        self.escaped: list[dict[str, str]] = []
        self.over_bounds: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}

    def scan(self, name: str, body: bytes, content_type: str | None = None) -> None:
        from safemedia.verdict import Verdict

        (self.crash_dir / "current-case.bin").write_bytes(body)
        if self.last_peak_kib > 128 * 1024:  # cheap cases leave nothing worth trimming
            _release_freed_memory()
        _reset_peak()
        start = time.perf_counter()
        try:
            verdict = self.engine.scan(body, content_type)
            if not isinstance(verdict, Verdict):
                raise TypeError(f"scan returned {type(verdict).__name__}, not a Verdict")
        except BaseException as exc:  # anything escaping Engine.scan is the finding
            seconds = time.perf_counter() - start
            digest = hashlib.sha256(body).hexdigest()[:16]
            saved = self.crash_dir / f"crash-{digest}.bin"
            saved.write_bytes(body)
            self.escaped.append(
                {
                    "case": name,
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=6),
                    "saved": str(saved),
                }
            )
            key = "escaped"
            result: dict[str, Any] = {"kind": key, "reason": None}
        else:
            seconds = time.perf_counter() - start
            key = f"{verdict.kind}" + (f":{verdict.reason}" if verdict.reason else "")
            result = {"kind": str(verdict.kind), "reason": verdict.reason and str(verdict.reason)}
            result["detail"] = verdict.detail[:200]
        peak = self.last_peak_kib = _peak_kib()
        result.update(seconds=seconds, peak_kib=peak, bytes=len(body))
        self.cases += 1
        self.kinds[key] = self.kinds.get(key, 0) + 1
        if seconds >= MAX_SECONDS or peak >= MAX_PEAK_KIB:  # a finding: keep the input
            digest = hashlib.sha256(body).hexdigest()[:16]
            (self.crash_dir / f"over-bound-{digest}.bin").write_bytes(body)
            self.over_bounds.append(
                {"case": name, "seconds": round(seconds, 2), "peak_mib": peak // 1024, **result}
            )
        if seconds > self.max_seconds:
            self.max_seconds, self.slowest = seconds, name
            if not name.startswith("seed:"):  # kept as a candidate regression fixture
                (self.crash_dir / "slowest-case.bin").write_bytes(body)
        if peak > self.max_peak_kib:
            self.max_peak_kib, self.biggest = peak, name
            if not name.startswith("seed:"):
                (self.crash_dir / "biggest-case.bin").write_bytes(body)
        if len(self.results) < 200:
            self.results[name] = result

    def report(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "max_seconds": self.max_seconds,
            "slowest": self.slowest,
            "max_peak_kib": self.max_peak_kib,
            "biggest": self.biggest,
            "process_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "kinds": self.kinds,
            "escaped": self.escaped,
            "over_bounds": self.over_bounds,
            "results": self.results,
        }


FUZZ_BATCH = 1000  # examples per hypothesis run: its bookkeeping slows down far beyond that


def _fuzz(runner: _Runner, cases: int, seed: int) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from tests.adversarial.hostile import Case, hostile_cases, seed_files

    seeds = seed_files()
    for name, body in seeds.items():  # the unmutated seeds first: each must scan too
        runner.scan(f"seed:{name}", body)
    strategy = hostile_cases(seeds)
    batch = 0
    while cases > 0:
        size = min(cases, FUZZ_BATCH)

        @settings(
            max_examples=size,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis_seed(seed * 1000 + batch)
        @given(strategy)
        def one(case: Case) -> None:
            name = f"{case.seed}+{len(case.edits)}edits#{runner.cases}"
            runner.scan(name, case.body)

        before = runner.cases
        one()
        cases -= max(1, runner.cases - before)
        batch += 1
        (runner.crash_dir / "progress.txt").write_text(f"{runner.cases} cases scanned\n")


def _child(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    logging.basicConfig(level=logging.CRITICAL)  # thousands of uninspectable verdicts are normal
    crash_dir = Path(job["crash_dir"])
    crash_dir.mkdir(parents=True, exist_ok=True)
    runner = _Runner(job["config"], crash_dir, job.get("target", "engine"))
    start = time.perf_counter()
    if job["mode"] == "fuzz":
        _fuzz(runner, int(job["cases"]), int(job["seed"]))
    else:
        for name, path in job["files"].items():
            runner.scan(name, Path(path).read_bytes(), job.get("content_type"))
    report = runner.report()
    report["target"] = job.get("target", "engine")
    report["wall_seconds"] = time.perf_counter() - start
    runner.engine.close()
    print(json.dumps(report))
    return 0


def default_target() -> str:
    """``engine`` (``Engine.scan``) once :mod:`safemedia.engine` exists, else ``decode``."""
    return "engine" if importlib.util.find_spec("safemedia.engine") else "decode"


def run_job(job: dict[str, Any], work_dir: Path, *, timeout: float) -> dict[str, Any]:
    """Run ``job`` in a child process; its report, or an ``error`` entry if it died or hung."""
    work_dir.mkdir(parents=True, exist_ok=True)
    job = {"crash_dir": str(work_dir / "crashes"), "target": default_target(), **job}
    job_file = work_dir / "job.json"
    job_file.write_text(json.dumps(job))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(
            [sys.executable, "-W", "error", "-m", "tests.adversarial.scanproc", str(job_file)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return {
            "error": f"child did not finish in {timeout} s",
            "stderr": str(exc.stderr or "")[-4000:],
            "current_case": str(Path(job["crash_dir"]) / "current-case.bin"),
        }
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {
            "error": f"child exited with {proc.returncode}",
            "stderr": proc.stderr[-4000:],
            "current_case": str(Path(job["crash_dir"]) / "current-case.bin"),
        }
    report: dict[str, Any] = json.loads(lines[-1])
    report["stderr"] = proc.stderr[-4000:]
    return report


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
