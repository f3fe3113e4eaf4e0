"""docs/configuration.md documents every configuration key, with its environment variable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from safemedia.config import Config, SmtpConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_every_config_key_has_a_row_with_its_environment_variable() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| `")}
    missing = []
    for cls, prefix in ((Config, "SAFEMEDIA_"), (SmtpConfig, "SAFEMEDIA_SMTP_")):
        for f in dataclasses.fields(cls):
            if f"`{f.name}`" not in rows:
                missing.append(f"{f.name}: no row")
            elif f.name != "smtp" and f"{prefix}{f.name.upper()}" not in text:
                missing.append(f"{f.name}: no environment variable")
    assert missing == []
