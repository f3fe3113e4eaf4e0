"""The documentation hangs together: the index links every page, and relative links resolve."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    links = [m.group(1).split("#")[0] for m in LINK.finditer(text)]
    return [link for link in links if link and "://" not in link and not link.startswith("mailto:")]


def test_docs_index_links_every_page() -> None:
    linked = set(_relative_links(DOCS / "index.md"))
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert pages - linked == set()


def test_readme_links_the_docs_index_and_its_screenshot_exists() -> None:
    links = _relative_links(ROOT / "README.md")
    assert "docs/index.md" in links
    assert "docs/demo.png" in links
