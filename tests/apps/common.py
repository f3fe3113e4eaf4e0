"""What every test app shares: the images folder, the hash list, the runtime under test.

The server tests set ``SMTEST_DIR`` to a folder holding ``images/`` and ``list.txt``
(``sha256 <hex> <id>`` lines). The runtime records into a :class:`MemoryRecorder` that the apps
expose at ``/_detections`` so tests can read it over HTTP.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from safemedia import Config
from safemedia.config import ListConfig
from safemedia.runtime import Runtime
from tests.recording import MemoryRecorder
from tests.standin_engine import StandInEngine

TEST_DIR = Path(os.environ.get("SMTEST_DIR", "."))
IMAGES = TEST_DIR / "images"
LIST = TEST_DIR / "list.txt"


def test_config() -> Config:
    return Config(
        max_body_bytes=int(os.environ.get("SMTEST_MAX_BODY_BYTES", "500000")),
        list_reload_interval=0.1,
    )


def test_runtime() -> Runtime:
    """The runtime the served apps use; the engine is the test stand-in until Engine lands."""
    config = test_config()
    engine = StandInEngine(config, watch=LIST)
    return Runtime(config, engine=engine, recorder=MemoryRecorder())


def engine_runtime() -> Runtime:
    """A runtime with the real engine (reloading ``list.txt``) and an in-memory recorder."""
    config = replace(test_config(), hash_lists=(ListConfig(path=LIST, name="test"),))
    return Runtime(config, recorder=MemoryRecorder())


def detections_json(runtime: Runtime) -> list[dict[str, str | None]]:
    recorder = runtime.recorder
    assert isinstance(recorder, MemoryRecorder)
    return [
        {
            "url": d.url,
            "action": str(d.action),
            "kind": str(d.verdict.kind),
            "reason": str(d.verdict.reason) if d.verdict.reason else None,
            "md5": d.md5,
        }
        for d in recorder.detections
    ]


def decodes(runtime: Runtime) -> int:
    """How many scans the engine computed (not answered from a cache or another flight)."""
    engine = runtime.engine
    if isinstance(engine, StandInEngine):
        return engine.decodes
    stats = engine.stats()  # type: ignore[attr-defined]
    computed: int = stats["scans"] - stats["cache_hits"] - stats["coalesced"] - stats["errors"]
    return computed
