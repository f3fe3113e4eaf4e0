"""Fuzzing the decode + scan path with mutated seeds of every format (hypothesis).

CI runs 1,000 cases with a fixed seed; the long run is ``scripts/fuzz`` (10,000 cases, a new seed
each time; ``ADVERSARIAL_FUZZ_CASES`` and ``ADVERSARIAL_FUZZ_SEED`` choose).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.adversarial.evidence import env_int, record
from tests.adversarial.hostile import seed_files
from tests.adversarial.scanproc import run_job

MAX_SECONDS = 2.0
MAX_PEAK_KIB = 512 * 1024
REGRESSIONS = Path(__file__).resolve().parent.parent / "fixtures" / "regressions"


def _list_file(tmp_path: Path) -> Path:
    """A hash list naming two seeds exactly, so matching runs on every case too."""
    seeds = seed_files()
    lines = [
        f"md5 {hashlib.md5(seeds['baseline.jpg']).hexdigest()} fuzz-seed-jpeg",
        f"sha256 {hashlib.sha256(seeds['rgb.png']).hexdigest()} fuzz-seed-png",
    ]
    path = tmp_path / "fuzz-list.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _crash_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get("ADVERSARIAL_FUZZ_CRASH_DIR")
    return Path(chosen) if chosen else tmp_path


def _explain(report: dict[str, Any]) -> str:
    return f"{report.get('error')}\n{report.get('stderr')}\nlast case: {report.get('current_case')}"


def test_no_mutated_image_escapes_scan_or_its_time_and_memory_bounds(tmp_path: Path) -> None:
    cases = env_int("ADVERSARIAL_FUZZ_CASES", 1000)
    seed = env_int("ADVERSARIAL_FUZZ_SEED", 0)
    work = _crash_dir(tmp_path)
    job = {
        "mode": "fuzz",
        "cases": cases,
        "seed": seed,
        "config": {"hash_lists": [str(_list_file(tmp_path))], "store": "memory:"},
    }
    report = run_job(job, work, timeout=60 + cases * 0.5)
    if "error" in report:
        current = Path(str(report["current_case"]))
        if current.exists():
            kept = work / f"hang-or-crash-{hashlib.sha256(current.read_bytes()).hexdigest()[:16]}"
            shutil.copy(current, kept)
        pytest.fail(f"the scanning process died or hung (seed {seed}): {_explain(report)}")
    record(
        "fuzz",
        {
            "cases": report["cases"],
            "target": report["target"],
            "seed": seed,
            "max_seconds": round(float(report["max_seconds"]), 4),
            "slowest_case": report["slowest"],
            "max_peak_mib": round(int(report["max_peak_kib"]) / 1024, 1),
            "wall_seconds": round(float(report["wall_seconds"]), 1),
            "verdicts": report["kinds"],
            "escaped": len(report["escaped"]),
        },
    )
    assert report["escaped"] == [], (
        f"seed {seed}: exceptions escaped Engine.scan: {report['escaped']}"
    )
    assert int(report["cases"]) >= cases
    assert float(report["max_seconds"]) < MAX_SECONDS, report["slowest"]
    assert int(report["max_peak_kib"]) < MAX_PEAK_KIB, report["biggest"]


def test_every_regression_fixture_gets_a_verdict_within_bounds(tmp_path: Path) -> None:
    files = {p.name: str(p) for p in sorted(REGRESSIONS.glob("*.bin"))}
    if not files:
        pytest.skip("no regression fixtures recorded yet")
    report = run_job(
        {"mode": "files", "files": files, "config": {"store": "memory:"}}, tmp_path, timeout=120
    )
    assert "error" not in report, _explain(report)
    assert report["escaped"] == []
    assert float(report["max_seconds"]) < MAX_SECONDS, report["slowest"]
    assert int(report["max_peak_kib"]) < MAX_PEAK_KIB, report["biggest"]
