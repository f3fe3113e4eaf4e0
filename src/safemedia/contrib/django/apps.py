"""The Django app config: registers safemedia's system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class SafeMediaConfig(AppConfig):
    name = "safemedia.contrib.django"
    label = "safemedia"
    verbose_name = "safemedia"

    def ready(self) -> None:
        from safemedia.contrib.django.checks import check_setup

        checks.register(check_setup, checks.Tags.security)
