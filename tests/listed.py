"""A hash list of harmless synthetic images for in-process tests with the real engine.

Usage::

    config = with_list(Config(max_body_bytes=50_000), LISTED)   # LISTED's SHA-256 is listed
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from safemedia import Config
from safemedia.config import ListConfig

_DIR = Path(tempfile.mkdtemp(prefix="safemedia-lists-"))
atexit.register(shutil.rmtree, _DIR, True)


def with_list(config: Config, *bodies: bytes) -> Config:
    """``config`` with a list file naming the SHA-256 of each of ``bodies``."""
    digests = [hashlib.sha256(b).hexdigest() for b in bodies]
    path = _DIR / f"{hashlib.sha256(''.join(digests).encode()).hexdigest()[:16]}.txt"
    path.write_text("".join(f"sha256 {d} listed-{i}\n" for i, d in enumerate(digests)))
    return replace(config, hash_lists=(ListConfig(path=path, name="test"),))
