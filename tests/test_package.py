"""The package's public surface."""

import subprocess
import sys

import safemedia


def test_all_is_sorted_and_importable() -> None:
    assert safemedia.__all__ == sorted(safemedia.__all__)
    for name in safemedia.__all__:
        assert hasattr(safemedia, name), name


def test_command_line_prints_its_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "safemedia", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"safemedia {safemedia.__version__}"


def test_adapter_modules_export_importable_names() -> None:
    import safemedia.http
    import safemedia.runtime

    for module in (safemedia.http, safemedia.runtime):  # ruff (RUF022) keeps __all__ sorted
        for name in module.__all__:
            assert hasattr(module, name), name
