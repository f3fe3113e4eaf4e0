"""The documentation hangs together: the index links every page, and relative links resolve."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    links = [m.group(1) for m in LINK.finditer(text)]
    return [link for link in links if "://" not in link and not link.startswith("mailto:")]


def _relative_links(page: Path) -> list[str]:
    return [link for link in (x.split("#")[0] for x in _links(page)) if link]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    headings = re.findall(r"^#+\s+(.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_docs_index_links_every_page() -> None:
    linked = set(_relative_links(DOCS / "index.md"))
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert pages - linked == set()


def test_readme_links_the_docs_index_and_its_screenshot_exists() -> None:
    links = _relative_links(ROOT / "README.md")
    assert "docs/index.md" in links
    assert "docs/demo.png" in links


def test_relative_links_in_readme_and_docs_resolve() -> None:
    broken = []
    for page in [ROOT / "README.md", ROOT / "examples" / "README.md", *DOCS.glob("*.md")]:
        for link in _links(page):
            target, _, anchor = link.partition("#")
            path = page.parent / target if target else page
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {link}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such heading)")
    assert broken == []
