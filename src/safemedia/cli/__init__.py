"""The ``safemedia`` command. Each command group lives in its own module with a ``register``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from safemedia import __version__
from safemedia.cli import operator, scanning
from safemedia.config import Config

COMMAND_GROUPS = (scanning, operator)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command group's subcommands."""
    parser = argparse.ArgumentParser(
        prog="safemedia", description="Block known abuse imagery in Python web apps."
    )
    parser.add_argument("--version", action="version", version=f"safemedia {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, config: Config | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 match found, 2 errors).

    ``config`` is used by the commands that read one when no ``--config`` is given (the Django
    command ``manage.py safemedia`` passes the one built from ``settings.SAFEMEDIA``).
    """
    parser = build_parser()
    parser.set_defaults(preset_config=config)
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = handler(args)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
