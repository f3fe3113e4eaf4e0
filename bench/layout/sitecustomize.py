"""Shifts where a benchmark server's objects land in memory (``$SMBENCH_LAYOUT_SEED``).

Imported by the interpreter at start-up when this directory is on ``PYTHONPATH``
(:func:`bench.server_rotation.layout_env`). Two processes of the same program otherwise lay
their heaps out alike, and that layout alone (which hot objects share cache sets) can make one
program a few percent faster or slower than another that does the same work; a seeded number
of small allocations, half of them freed again to leave holes, and one page-sized block make
every later allocation land elsewhere, so that an arm of several seeds averages the layout out.
Being first on the path, it hides any other ``sitecustomize`` from the benchmark's servers (the
venvs this project uses have none).
"""

from __future__ import annotations

import os
import random

_kept: list[object] = []


def _shift(seed: int) -> None:
    rng = random.Random(seed)
    blocks = [bytearray(rng.randrange(8, 512)) for _ in range(rng.randrange(500, 4000))]
    rng.shuffle(blocks)
    _kept.extend(blocks[: len(blocks) // 2])
    _kept.append(bytearray(rng.randrange(1, 64) * 4096 + rng.randrange(4096)))


_seed = os.environ.get("SMBENCH_LAYOUT_SEED")
if _seed:
    _shift(int(_seed))
