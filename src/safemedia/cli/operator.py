"""Operator commands: ``email``, ``events``, ``blocked``, ``unblock`` and ``scan``.

Each reads ``--config PATH``, else ``$SAFEMEDIA_CONFIG``, else ``./safemedia.toml``, and works on
the store that config names (the same file the web app's workers use). Exit status: 0 done (scan:
nothing matched), 1 a scan matched, 2 an error (the message says what).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from typing import Any

from safemedia.cli import reports
from safemedia.config import Config, ConfigError
from safemedia.notify import SendError, messages, send_now, unverified_warning
from safemedia.store import Store, StoreError, open_store
from safemedia.store.store import CODE_TTL

Handler = Callable[[argparse.Namespace], int]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the operator subcommands."""
    _register_email(sub)
    _register_events(sub)
    p = _command(sub, "blocked", _blocked, "list the URLs refused to every visitor")
    p.add_argument("--json", action="store_true", help="one JSON array")
    p = _command(
        sub,
        "unblock",
        _unblock,
        "lift a block after review and allow-list those exact bytes",
        "Lifts the block of a URL (or of an event's URL), and of every other URL blocked for "
        "the same bytes; adds the image's SHA-256 to the allow-list so the same bytes are not "
        "blocked again; records who did it and why in the audit trail.",
    )
    p.add_argument("target", metavar="URL_OR_EVENT_ID", help="a blocked URL or an event id")
    p.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    p = _command(sub, "audit", _audit, "list operator actions: unblocks, verified addresses")
    p.add_argument("--json", action="store_true", help="one JSON array")
    p = _command(
        sub,
        "scan",
        _scan,
        "scan a folder of uploads against the hash lists",
        "Scans every file below each folder (and each named file) with the configured lists "
        "and the same engine as the middleware, records matches as events, prints matches, "
        "uninspectable images and a summary (progress on stderr at a terminal). Exit 0 nothing "
        "matched, 1 something matched, 2 unreadable files or errors.",
    )
    p.add_argument("targets", nargs="+", metavar="DIR_OR_FILE")
    p.add_argument("--json", action="store_true", help="one JSON object with every result")


def _command(
    sub: argparse._SubParsersAction[Any],
    name: str,
    handler: Handler,
    help_text: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=description or help_text
    )
    add_config_option(p)
    p.set_defaults(handler=guarded(handler))
    return p


def add_config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the config file (default: $SAFEMEDIA_CONFIG, else ./safemedia.toml)",
    )


def guarded(handler: Handler) -> Handler:
    """Turn configuration and store errors into a message and exit status 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (ConfigError, StoreError, SendError, LookupError, ValueError) as exc:
            print(f"safemedia: error: {exc}", file=sys.stderr)
            return 2

    return run


def open_config_and_store(args: argparse.Namespace) -> tuple[Config, Store]:
    path = getattr(args, "config", None)
    preset: Config | None = getattr(args, "preset_config", None)
    config = preset if preset is not None and path is None else Config.load(path)
    return config, open_store(config, quiet=True)


# -- email -------------------------------------------------------------------------------------


def _register_email(sub: argparse._SubParsersAction[Any]) -> None:
    email = sub.add_parser(
        "email",
        help="verify the alert address, send a test message",
        description="Alerts go only to notify_to, and only once it is verified.",
    )
    email_sub = email.add_subparsers(dest="email_command", metavar="COMMAND", required=True)
    p = _command(email_sub, "verify", _email_verify, "mail a one-time code to ADDRESS")
    p.add_argument("address", metavar="ADDRESS")
    p = _command(email_sub, "confirm", _email_confirm, "confirm the address with the code")
    p.add_argument("code", metavar="CODE")
    _command(email_sub, "test", _email_test, "send a test message to the verified notify_to")
    _command(email_sub, "status", _email_status, "the alert address and the outbox")


def _email_verify(args: argparse.Namespace) -> int:
    config, store = open_config_and_store(args)
    address = args.address.strip()
    if "@" not in address or any(ch.isspace() for ch in address):
        raise ValueError(f"{address!r} is not an email address")
    code = store.new_verification_code(address, ttl=CODE_TTL)
    minutes = int(CODE_TTL // 60)
    message = messages.verification(
        code, sender=config.smtp.sender, to=address, ttl_minutes=minutes
    )
    send_now(message, config.smtp, to=address)
    print(f"Sent a one-time code to {address}; it expires in {minutes} minutes.")
    print("Run: safemedia email confirm CODE")
    if (config.notify_to or "").lower() != address.lower():
        print(
            f"Note: alerts go to notify_to ({config.notify_to or 'not set'}); set notify_to = "
            f'"{address}" in the config for alerts to go there.',
            file=sys.stderr,
        )
    return 0


def _email_confirm(args: argparse.Namespace) -> int:
    config, store = open_config_and_store(args)
    address = store.confirm_code(args.code)
    print(f"Verified {address}.")
    pending = store.outbox.status().pending
    if (config.notify_to or "").lower() == address:
        if pending:
            print(f"{pending} waiting alert(s) will be mailed by the running web app.")
    else:
        print(f"Note: alerts go to notify_to ({config.notify_to or 'not set'}), not {address}.")
    return 0


def _email_test(args: argparse.Namespace) -> int:
    config, store = open_config_and_store(args)
    if not config.notify_to or not store.is_verified(config.notify_to):
        print(unverified_warning(config), file=sys.stderr)
        return 2
    message = messages.check_message(sender=config.smtp.sender, to=config.notify_to)
    send_now(message, config.smtp, to=config.notify_to)
    print(f"Sent a test message to {config.notify_to}.")
    return 0


def _email_status(args: argparse.Namespace) -> int:
    config, store = open_config_and_store(args)
    verified = store.is_verified(config.notify_to)
    status = store.outbox.status()
    print(f"notify_to:  {config.notify_to or '(not set)'}" + (" (verified)" if verified else ""))
    print(f"smtp:       {config.smtp.host}:{config.smtp.port}")
    print(f"outbox:     {status.pending} waiting, {status.sent} sent")
    if status.last_error:
        print(f"last error: {messages.printable(status.last_error)}")
    if not verified:
        print(unverified_warning(config), file=sys.stderr)
    return 0


# -- events, blocked, unblock --------------------------------------------------------------------


def _register_events(sub: argparse._SubParsersAction[Any]) -> None:
    p = _command(sub, "events", _events, "list recorded detections")
    p.add_argument(
        "--since", metavar="WHEN", help="an ISO date/time (UTC) or an age: 30m, 12h, 7d, 2w"
    )
    p.add_argument("--limit", type=int, metavar="N", help="only the newest N")
    p.add_argument("--json", action="store_true", help="one JSON array")
    events_sub = p.add_subparsers(dest="events_command", metavar="show", required=False)
    show = _command(events_sub, "show", _events_show, "everything recorded about one event")
    show.add_argument("id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="one JSON object")


def _events(args: argparse.Namespace) -> int:
    _config, store = open_config_and_store(args)
    since = reports.parse_since(args.since) if args.since else None
    found = store.detections(since=since, limit=args.limit)
    if args.json:
        print(json.dumps([d.to_json() for d in found], indent=2))
    else:
        print(reports.events_table(found))
    return 0


def _events_show(args: argparse.Namespace) -> int:
    _config, store = open_config_and_store(args)
    detection = store.detection(args.id)
    if detection is None:
        raise LookupError(f"no event {args.id}")
    blocked = store.is_blocked(detection.url)
    allowed = store.is_allowed(detection.sha256)
    if args.json:
        print(json.dumps(detection.to_json() | {"blocked": blocked, "allowed": allowed}, indent=2))
    else:
        print(reports.event_details(detection, blocked=blocked, allowed=allowed))
    return 0


def _blocked(args: argparse.Namespace) -> int:
    _config, store = open_config_and_store(args)
    found = store.blocked()
    if args.json:
        print(json.dumps([b.to_json() for b in found], indent=2))
    else:
        print(reports.blocked_table(found))
    return 0


def _unblock(args: argparse.Namespace) -> int:
    _config, store = open_config_and_store(args)
    result = store.unblock(args.target, reason=args.reason)
    for url in result.urls:
        print(f"Unblocked {messages.printable(url)}")
    if not result.urls:
        print("No URL was blocked for those bytes.")
    print(f"Allow-listed sha256 {result.sha256}: the same bytes are no longer blocked.")
    return 0


def _audit(args: argparse.Namespace) -> int:
    _config, store = open_config_and_store(args)
    entries = store.audit_trail()
    if args.json:
        print(json.dumps([e.to_json() for e in entries], indent=2))
    else:
        print(reports.audit_table(entries))
    return 0


def _scan(args: argparse.Namespace) -> int:
    # Imported here: the engine (numpy, Pillow, the lists) is only needed by this command.
    from safemedia.cli.folder_scan import run_scan

    config, store = open_config_and_store(args)
    if not config.hash_lists:
        raise ValueError("the config names no hash_lists to scan against")
    status, _summary = run_scan(config, store, args.targets, as_json=args.json)
    return status
