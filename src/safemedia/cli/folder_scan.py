"""``safemedia scan``: check a folder of uploads (images served without passing through Python).

Every file is scanned by the same :class:`~safemedia.engine.Engine` the middleware uses, with the
config's lists and the store's allow-list; matches are recorded in the store as events (action
``found``: nothing was served through safemedia, so nothing is blocked or mailed). Exit status as
``safemedia match``: 0 nothing matched, 1 something matched, 2 a file could not be read.
"""

from __future__ import annotations

import json
import mimetypes
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safemedia.cli.scanning import ERROR, FOUND, OK, verdict_record
from safemedia.config import Config
from safemedia.engine import Engine
from safemedia.events import Action, Detection
from safemedia.notify.messages import REPORTING_DUTY, printable
from safemedia.store import Store
from safemedia.verdict import Reason, Verdict

_NOT_IMAGE_REASONS = {Reason.UNSUPPORTED_FORMAT, Reason.UNDECODABLE}


@dataclass
class Summary:
    files: int = 0
    matched: int = 0
    uninspectable: int = 0
    not_images: int = 0
    unreadable: int = 0
    events: list[int] = field(default_factory=list)

    def text(self) -> str:
        return (
            f"Scanned {self.files} files: {self.matched} matched, {self.uninspectable} "
            f"uninspectable images, {self.not_images} not images, {self.unreadable} unreadable."
        )


def files_under(targets: Sequence[str]) -> Iterator[Path]:
    """Each named file, and every file below each named folder (sorted, links not followed)."""
    for target in targets:
        path = Path(target)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    yield Path(root) / name
        else:
            yield path


def _not_an_image(path: Path, verdict: Verdict) -> bool:
    """Undecodable and not named as a raster image: a PDF or text file in the uploads."""
    kind = mimetypes.guess_type(path.name)[0] or ""
    named_image = kind.startswith("image/") and kind != "image/svg+xml"
    return verdict.reason in _NOT_IMAGE_REASONS and not named_image


def _scan_one(engine: Engine, path: Path) -> tuple[Path, Verdict | OSError]:
    try:
        body = path.read_bytes()
    except OSError as exc:
        return path, exc
    return path, engine.scan(body)


def _detection(path: Path, verdict: Verdict) -> Detection:
    return Detection(
        verdict=verdict,
        action=Action.FOUND,
        method="SCAN",
        host="",
        path=str(path.resolve()),
        md5=verdict.hashes.get("md5", ""),
    )


class _Progress:
    """``scanned N files, M matched`` on one stderr line, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._last = 0.0

    def show(self, summary: Summary, *, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self._last < 0.1:
            return
        self._last = now
        end = "\n" if final else ""
        print(
            f"\rscanned {summary.files} files, {summary.matched} matched", end=end, file=sys.stderr
        )


def run_scan(
    config: Config, store: Store, targets: Sequence[str], *, as_json: bool
) -> tuple[int, Summary]:
    """Scan ``targets``, record matches in ``store``, print results; returns (status, summary)."""
    engine = Engine(config, is_allowed=store.is_allowed)
    summary = Summary()
    progress = _Progress()
    results: list[dict[str, Any]] = []
    try:
        with ThreadPoolExecutor(config.scan_concurrency) as pool:
            for path, outcome in pool.map(lambda p: _scan_one(engine, p), files_under(targets)):
                summary.files += 1
                progress.show(summary)
                if isinstance(outcome, OSError):
                    summary.unreadable += 1
                    reason = outcome.strerror or str(outcome)
                    print(
                        f"safemedia: {printable(str(path))}: cannot read: {reason}", file=sys.stderr
                    )
                    continue
                event = _tally(store, summary, path, outcome)
                if as_json:
                    results.append(verdict_record(str(path), outcome) | {"event": event})
                else:
                    _print_line(path, outcome, event)
    finally:
        engine.close()
    progress.show(summary, final=True)
    _print_summary(summary, results, as_json=as_json)
    if summary.matched:
        return FOUND, summary
    return (ERROR if summary.unreadable else OK), summary


def _tally(store: Store, summary: Summary, path: Path, verdict: Verdict) -> int | None:
    if verdict.is_match:
        summary.matched += 1
        event = store.add_detection(_detection(path, verdict), notify=False)
        summary.events.append(event)
        return event
    if verdict.is_uninspectable:
        if _not_an_image(path, verdict):
            summary.not_images += 1
        else:
            summary.uninspectable += 1
    return None


def _print_line(path: Path, verdict: Verdict, event: int | None) -> None:
    name = printable(str(path))
    if verdict.match is not None:
        m = verdict.match
        print(
            f"{name}: MATCH list={printable(m.list_name)!r} entry={printable(m.entry_id)!r} "
            f"algorithm={m.algorithm} distance={m.distance} event={event}"
        )
    elif verdict.reason is not None and not _not_an_image(path, verdict):
        print(f"{name}: UNINSPECTABLE reason={verdict.reason.value} ({printable(verdict.detail)})")


def _print_summary(summary: Summary, results: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        data = {"results": results, "summary": summary.__dict__}
        print(json.dumps(data, indent=2))
        return
    print(summary.text())
    if summary.events:
        first, last = summary.events[0], summary.events[-1]
        print(f"Recorded as events {first}-{last}: safemedia events show ID")
        print()
        print(REPORTING_DUTY)
