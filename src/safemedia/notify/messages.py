"""The mails safemedia sends, built with the ``email`` package. Never an image, only its hashes.

Header values are built from fixed text plus a count and a cleaned host name; request data (URLs,
hosts, list entry ids) only reaches the plain-text body, with control characters escaped, so a URL
holding CR/LF can neither add a header nor forge a line of the report.
"""

from __future__ import annotations

import email.utils
import socket
from collections.abc import Sequence
from email.message import EmailMessage

from safemedia.store.records import StoredDetection, format_time

REPORTING_DUTY = (
    "Reporting duty: if this is child sexual abuse material, you must report it. In the United\n"
    "States report to NCMEC's CyberTipline (https://report.cybertip.org/); elsewhere report to\n"
    "your regional hotline (INHOPE lists them: https://www.inhope.org/). Preserve what the law\n"
    "where you operate requires, and do not open, copy or forward the image. safemedia never\n"
    "stores, logs or mails the image itself, only the hashes a report asks for."
)


def printable(text: str, *, limit: int = 2000) -> str:
    """``text`` with every control character (CR, LF, tab, DEL, C1, ...) escaped as ``\\xNN``."""
    out = []
    for ch in text[:limit]:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or ch in "\u2028\u2029":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out) + ("..." if len(text) > limit else "")


def header_text(text: str, *, limit: int = 120) -> str:
    """A value safe for a header: printable, single line, bounded."""
    return printable(text, limit=limit)


def _new_message(*, sender: str, to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = header_text(sender, limit=320)
    msg["To"] = header_text(to, limit=320)
    msg["Subject"] = header_text(subject)
    msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    domain = sender.rpartition("@")[2] or socket.getfqdn()
    msg["Message-ID"] = email.utils.make_msgid(domain=header_text(domain, limit=200))
    msg["Auto-Submitted"] = "auto-generated"
    return msg


def _describe(d: StoredDetection) -> str:
    lines = [
        f"Event {d.id}, {format_time(d.time)} ({d.action})",
        f"  URL:        {printable(d.method)} {printable(d.url)}",
    ]
    if d.list_name is not None:
        lines += [
            f"  List:       {printable(d.list_name)}",
            f"  Entry id:   {printable(d.entry_id or '')}",
            f"  Distance:   {d.distance} ({printable(d.algorithm or '')}"
            + (f", frame {d.frame})" if d.frame else ")"),
        ]
    else:
        lines.append(f"  Not inspectable: {printable(d.reason or d.kind)}")
        if d.detail:
            lines.append(f"  Detail:     {printable(d.detail, limit=300)}")
    lines += [f"  SHA-256:    {printable(d.sha256)}", f"  MD5:        {printable(d.md5 or '-')}"]
    for name, value in sorted(d.perceptual_hashes.items()):
        lines.append(f"  {printable(name).upper() + ':':<11} {printable(value)}")
    return "\n".join(lines)


def alert(
    detections: Sequence[StoredDetection], *, sender: str, to: str, digest: bool
) -> EmailMessage:
    """The notification for one or more blocked images (a digest when several or in a window)."""
    n = len(detections)
    hosts = sorted({d.host for d in detections if d.host})
    where = f" on {hosts[0]}" if len(hosts) == 1 else ""
    noun = "image" if n == 1 else "images"
    subject = f"safemedia: {n} {noun} blocked{where}"
    if digest:
        subject += " (digest)"
    msg = _new_message(sender=sender, to=to, subject=subject)
    intro = (
        f"safemedia blocked {n} {noun} on your site"
        + (" since the last notification" if digest else "")
        + ".\nEach is refused to every visitor until you review it.\n"
    )
    first = detections[0].id if detections else 0
    body = [
        intro,
        *(_describe(d) + "\n" for d in detections),
        "How to review and unblock:",
        "  safemedia events show ID           everything recorded about an event",
        "  safemedia blocked                  every blocked URL",
        f'  safemedia unblock {first} --reason "reviewed: not abusive"',
        "      lifts the block of a false positive and allow-lists those exact bytes;",
        "      the review is kept in the audit trail.",
        DJANGO_HINT,
        "",
        REPORTING_DUTY,
        "",
    ]
    msg.set_content("\n".join(body), charset="utf-8")
    return msg


DJANGO_HINT = "(On a Django site, run these as `python manage.py safemedia ...`.)"


def verification(code: str, *, sender: str, to: str, ttl_minutes: int) -> EmailMessage:
    """The one-time code that proves ``to`` reaches the operator."""
    msg = _new_message(sender=sender, to=to, subject="safemedia: confirm this address")
    msg.set_content(
        "Someone asked safemedia to send its detection alerts to this address.\n\n"
        f"To confirm, run:\n\n    safemedia email confirm {code}\n\n{DJANGO_HINT}\n\n"
        f"The code works once and expires in {ttl_minutes} minutes. If you did not ask for\n"
        "this, ignore this mail: no alert is sent to an unconfirmed address.\n",
        charset="utf-8",
    )
    return msg


def check_message(*, sender: str, to: str) -> EmailMessage:
    """A harmless message that proves the SMTP settings work end to end."""
    msg = _new_message(sender=sender, to=to, subject="safemedia: test message")
    msg.set_content(
        "This is a test message from safemedia. Detection alerts will reach you here.\n\n"
        + REPORTING_DUTY
        + "\n",
        charset="utf-8",
    )
    return msg
