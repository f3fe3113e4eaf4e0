"""``manage.py safemedia ...``: the ``safemedia`` command line, configured by ``SAFEMEDIA``.

A Django site keeps its configuration in ``settings.SAFEMEDIA`` rather than in a
``safemedia.toml``; this command builds the same :class:`~safemedia.config.Config` the middleware
uses and runs the operator commands with it::

    python manage.py safemedia email verify moderator@example.org
    python manage.py safemedia email confirm CODE
    python manage.py safemedia events
    python manage.py safemedia unblock 3 --reason "reviewed: not abusive"

Needs ``"safemedia.contrib.django"`` in ``INSTALLED_APPS``. An explicit ``--config PATH`` after
the subcommand still wins.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from safemedia.cli import main
from safemedia.config import Config, ConfigError
from safemedia.contrib import config_from_setting


def _site_config() -> Config:
    try:
        return config_from_setting(getattr(settings, "SAFEMEDIA", None))
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


class Command(BaseCommand):
    help = "The safemedia command line (events, blocked, unblock, email, ...) for this site."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("arguments", nargs=argparse.REMAINDER, help="safemedia arguments")

    def run_from_argv(self, argv: list[str]) -> None:
        # Every argument after "safemedia" is safemedia's own, --help included.
        status = main(argv[2:], config=_site_config())
        if status:
            raise SystemExit(status)

    def handle(self, *args: Any, **options: Any) -> None:
        status = main(list(options["arguments"]), config=_site_config())
        if status:
            raise CommandError(f"safemedia exited with status {status}", returncode=status)
