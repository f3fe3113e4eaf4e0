"""Text the operator commands print: event tables and details, blocked URLs, ``--since`` ages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from safemedia.notify.messages import REPORTING_DUTY, printable
from safemedia.store import AuditEntry, BlockedUrl, StoredDetection

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``30m``/``12h``/``7d``/``2w`` ago, or an ISO date or date-time (UTC unless it says)."""
    age = _AGE.match(text)
    if age:
        moment = now or datetime.now(UTC)
        return moment - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected an age (30m, 12h, 7d, 2w) or an ISO date/time"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def events_table(detections: Sequence[StoredDetection]) -> str:
    if not detections:
        return "No events."
    rows = [
        [
            str(d.id),
            _when(d.time),
            d.action,
            printable(d.summary(), limit=80),
            printable(f"{d.method} {d.url}", limit=200),
        ]
        for d in detections
    ]
    return _table(["ID", "TIME (UTC)", "ACTION", "WHAT", "URL"], rows)


def blocked_table(blocked: Sequence[BlockedUrl]) -> str:
    if not blocked:
        return "No URL is blocked."
    rows = [[_when(b.time), str(b.detection_id), b.sha256[:16], printable(b.url)] for b in blocked]
    return _table(["SINCE (UTC)", "EVENT", "SHA-256", "URL"], rows)


def audit_table(entries: Sequence[AuditEntry]) -> str:
    if not entries:
        return "No operator actions recorded."
    rows = [
        [_when(e.time), printable(e.actor), e.action, printable(e.subject), printable(e.reason)]
        for e in entries
    ]
    return _table(["TIME (UTC)", "WHO", "ACTION", "SUBJECT", "REASON"], rows)


def event_details(d: StoredDetection, *, blocked: bool, allowed: bool) -> str:
    fields = [
        ("Event", str(d.id)),
        ("Time (UTC)", _when(d.time)),
        ("Action", d.action),
        ("Request", f"{d.method} {d.url}"),
        ("Verdict", d.summary()),
    ]
    if d.list_name is not None:
        fields += [("List hash", d.list_hash or ""), ("Image hash", d.query_hash or "")]
    fields += [("SHA-256", d.sha256), ("MD5", d.md5 or "-")]
    fields += [(name.upper(), value) for name, value in sorted(d.perceptual_hashes.items())]
    fields += [("Lists generation", str(d.lists_generation))]
    if d.client:
        fields.append(("Client", d.client))
    fields.append(("URL blocked now", "yes" if blocked else "no"))
    if allowed:
        fields.append(("Allow-listed", "yes: these bytes were reviewed as a false positive"))
    width = max(len(k) for k, _ in fields) + 1
    lines = [f"{(k + ':').ljust(width)} {printable(v)}" for k, v in fields]
    if blocked:
        lines += [
            "",
            "If, after review, this is a false positive:",
            f'  safemedia unblock {d.id} --reason "reviewed: ..."',
        ]
    return "\n".join([*lines, "", REPORTING_DUTY])
