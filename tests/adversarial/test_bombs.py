"""Decompression bombs and headers that lie about size: refused with a reason, memory bounded.

Each body is scanned by a real Engine (default config) in a child process that measures each
case's own peak resident memory. The HTTP-level gzip bomb is in ``test_http_tricks``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.adversarial.evidence import record
from tests.adversarial.hostile import BOMBS, HEAVY
from tests.adversarial.scanproc import MAX_PEAK_KIB, MAX_SECONDS, run_job


@pytest.fixture(scope="module")
def bomb_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("bombs")
    files: dict[str, str] = {}
    makers = {name: maker for name, (maker, _) in BOMBS.items()}
    makers.update(HEAVY)
    for name, maker in makers.items():
        path = work / f"{name}.bin"
        path.write_bytes(maker())
        files[name] = str(path)
    report = run_job(
        {"mode": "files", "files": files, "config": {"store": "memory:"}}, work, timeout=300
    )
    assert "error" not in report, f"{report['error']}: {report['stderr']}"
    record(
        "bombs",
        {
            name: {
                "verdict": r["kind"] + (f":{r['reason']}" if r["reason"] else ""),
                "seconds": round(r["seconds"], 3),
                "peak_mib": round(r["peak_kib"] / 1024, 1),
                "bytes": r["bytes"],
            }
            for name, r in report["results"].items()
        },
    )
    assert report["escaped"] == [], report["escaped"]
    return report


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_is_uninspectable_with_its_reason_quickly_and_in_bounded_memory(
    bomb_report: dict[str, Any], name: str
) -> None:
    result = bomb_report["results"][name]
    reasons = BOMBS[name][1]
    assert result["kind"] == "uninspectable", result
    assert result["reason"] in reasons, result
    assert result["peak_kib"] < MAX_PEAK_KIB, result
    assert result["seconds"] < MAX_SECONDS, result


@pytest.mark.parametrize("name", sorted(HEAVY))
def test_heavy_image_within_the_caps_gets_a_verdict_in_bounded_memory(
    bomb_report: dict[str, Any], name: str
) -> None:
    result = bomb_report["results"][name]
    assert result["kind"] in {"clean", "match", "uninspectable"}, result
    assert result["peak_kib"] < MAX_PEAK_KIB, result
