"""Operator commands: events, blocked, unblock, scan, email (durable-state issue)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this group's subcommands (filled in by the durable-state work)."""
