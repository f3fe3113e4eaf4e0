"""``safemedia hash``, ``match`` and ``lists``: hashing files and checking them against lists."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this group's subcommands (filled in by the detection engine)."""
