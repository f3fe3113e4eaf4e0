"""Figures the adversarial suites measured, kept for docs/reliability.md.

When ``ADVERSARIAL_EVIDENCE_DIR`` is set (``scripts/adversarial`` sets it), each suite writes its
figures there as ``NAME.json``; otherwise they are only printed (visible with ``pytest -s``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def record(name: str, figures: dict[str, Any]) -> None:
    """Print ``figures``; with ``$ADVERSARIAL_EVIDENCE_DIR`` set, also keep them as NAME.json."""
    text = json.dumps(figures, indent=1, sort_keys=True, default=str)
    print(f"\n[evidence] {name}: {text}")
    where = os.environ.get("ADVERSARIAL_EVIDENCE_DIR")
    if where:
        path = Path(where)
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{name}.json").write_text(text + "\n")


def env_int(name: str, default: int) -> int:
    """An integer from the environment (for the long runs), else ``default``."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default
