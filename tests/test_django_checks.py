"""Django system checks for a wrong safemedia set-up, as ``manage.py check`` reports them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.realserver import ROOT


def run(variant: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` with the test site's settings broken as ``variant``."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "tests.django_project.settings_checks",
            "SMTEST_CHECKS": variant,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def check(variant: str, **env: str) -> tuple[int, set[str], str]:
    """Run ``django check`` on the test site broken as ``variant``: exit code, ids, output."""
    done = run(variant, "-m", "django", "check", **env)
    output = done.stdout + done.stderr
    return done.returncode, set(re.findall(r"safemedia\.[EW]\d{3}", output)), output


def test_the_recommended_setup_passes_every_check(tmp_path: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("# empty list\n")
    code, ids, _ = check("recommended", SMTEST_LIST=str(listed), SMTEST_DIR=str(tmp_path))
    assert (code, ids) == (0, set())


def test_placement_below_whitenoise_or_above_gzip_and_a_missing_list_are_reported() -> None:
    code, ids, _ = check("misordered")
    assert ids == {"safemedia.W002", "safemedia.W004", "safemedia.E003"}
    assert code != 0


def test_a_bad_setting_is_an_error_naming_the_key() -> None:
    code, ids, output = check("bad")
    assert ids == {"safemedia.E001"}
    assert "max_body_bytes" in output
    assert code != 0


def test_no_middleware_and_no_lists_are_warnings() -> None:
    code, ids, _ = check("no-lists")
    assert (code, ids) == (0, {"safemedia.W001", "safemedia.W003"})


def test_a_bad_setting_stops_the_site_from_starting() -> None:
    done = run("bad", "-c", "from django.core.wsgi import get_wsgi_application as g; g()")
    assert done.returncode != 0
    assert "ImproperlyConfigured: SAFEMEDIA: bad value for 'max_body_bytes'" in done.stderr
