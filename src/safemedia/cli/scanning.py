"""``safemedia hash``, ``match`` and ``lists``: hashing files and checking them against lists.

Exit statuses follow virus scanners: 0 nothing matched (or all good), 1 something matched (for
``hash``: some file could not be decoded), 2 errors in arguments, files or lists.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from safemedia import hashing, imaging
from safemedia.config import Config, ConfigError, ListConfig
from safemedia.engine import Engine, decode_for
from safemedia.hashlists import ListError, parse_file
from safemedia.signals import EXACT, SIGNALS
from safemedia.verdict import Verdict

OK, FOUND, ERROR = 0, 1, 2


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``hash``, ``match`` and ``lists`` to the ``safemedia`` command."""
    p = sub.add_parser(
        "hash",
        help="print the hashes of image files as a hash list",
        description="Print 'ALGORITHM HEX PATH' for each file and algorithm: the output is "
        "itself a valid hash list whose entry ids are the file names.",
    )
    p.add_argument(
        "--algorithm",
        "-a",
        type=_algorithms,
        default=("pdq",),
        metavar="LIST",
        help="comma-separated: " + ",".join(SIGNALS) + " (default: pdq)",
    )
    p.add_argument(
        "--full-resolution",
        action="store_true",
        help="decode at full size (the python-threatexchange pipeline, slower)",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=_hash)

    p = sub.add_parser(
        "match",
        help="check image files against hash lists",
        description="Print a verdict per file: MATCH, CLEAN or UNINSPECTABLE. Exit 0 when "
        "nothing matched, 1 when something matched, 2 on errors in arguments or lists.",
    )
    p.add_argument(
        "--list",
        "-l",
        dest="lists",
        action="append",
        default=[],
        metavar="LIST",
        help="a hash-list file (repeat for several)",
    )
    p.add_argument(
        "--config",
        metavar="TOML",
        help="use this configuration (its lists, distances, algorithms) as well",
    )
    p.add_argument(
        "--algorithm",
        "-a",
        type=_perceptual,
        default=None,
        metavar="LIST",
        help="perceptual signals to compute, comma-separated (default: pdq or the config's)",
    )
    p.add_argument("--full-resolution", action="store_true", help="decode at full size")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=_match)

    p = sub.add_parser("lists", help="work with hash-list files")
    lists_sub = p.add_subparsers(dest="lists_command", metavar="COMMAND")
    c = lists_sub.add_parser(
        "check",
        help="validate hash-list files",
        description="Validate each file and print its entries per algorithm; malformed lines "
        "are printed as FILE:LINE: message and the exit status is 2.",
    )
    c.add_argument(
        "--algorithm",
        "-a",
        default=None,
        choices=sorted(SIGNALS),
        help="the algorithm of bare hex lines (as a list's 'algorithm' setting)",
    )
    c.add_argument("files", nargs="+", metavar="LIST")
    c.set_defaults(handler=_lists_check)
    p.set_defaults(handler=lambda _args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return ERROR


def _algorithms(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in SIGNALS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown algorithm {', '.join(unknown) or text!r} (known: {', '.join(SIGNALS)})"
        )
    return names


def _perceptual(text: str) -> tuple[str, ...]:
    names = _algorithms(text)
    exact = [n for n in names if not SIGNALS[n].perceptual]
    if exact:
        raise argparse.ArgumentTypeError(
            f"{', '.join(exact)}: exact digests are always checked; name perceptual signals"
        )
    return names


def _err(message: str) -> None:
    print(f"safemedia: {message}", file=sys.stderr)


def _read(name: str) -> bytes | None:
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        _err(f"{name}: cannot read: {exc.strerror or exc}")
        return None


def _hash(args: argparse.Namespace) -> int:
    config = Config(full_resolution=args.full_resolution)
    status = OK
    perceptual = [a for a in args.algorithm if SIGNALS[a].perceptual]
    for name in args.files:
        body = _read(name)
        if body is None:
            status = ERROR
            continue
        lines: list[str] = []
        for algorithm in args.algorithm:
            if algorithm in EXACT:
                lines.append(f"{algorithm} {hashing.hash_bytes(algorithm, body).hex()} {name}")
        if perceptual:
            try:
                image = decode_for(config, body)
            except imaging.DecodeError as exc:
                _err(f"{name}: {exc.reason.value}: {exc.detail}")
                status = max(status, FOUND)
                image = None
            if image is not None:
                for algorithm in perceptual:
                    value = hashing.hash_image(algorithm, image.frames[0])
                    lines.append(f"{algorithm} {value.value.hex()} {name}")
                    if value.quality is not None and value.quality < config.pdq_quality_min:
                        _err(
                            f"warning: {name}: {algorithm} quality {value.quality} is below "
                            f"{config.pdq_quality_min}: such images get no perceptual verdict"
                        )
        # keep the order the algorithms were asked for
        order = {a: i for i, a in enumerate(args.algorithm)}
        lines.sort(key=lambda line: order[line.split(" ", 1)[0]])
        for line in lines:
            print(line)
    return status


def _match(args: argparse.Namespace) -> int:
    try:
        base = Config.from_file(args.config) if args.config else Config()
    except ConfigError as exc:
        _err(str(exc))
        return ERROR
    lists = base.hash_lists + tuple(ListConfig(path=Path(p)) for p in args.lists)
    if not lists:
        _err("match: no hash list given (use --list LIST or --config)")
        return ERROR
    changes: dict[str, Any] = {"hash_lists": lists, "cache_size": 0}
    if args.algorithm:
        changes["algorithms"] = args.algorithm
    if args.full_resolution:
        changes["full_resolution"] = True
    config = _replace(base, changes)
    try:
        engine = Engine(config)
    except (ListError, ConfigError) as exc:
        for line in str(exc).splitlines():
            _err(line)
        return ERROR
    status = OK
    errors = False
    for name in args.files:
        body = _read(name)
        if body is None:
            errors = True
            continue
        verdict = engine.scan(body)
        if verdict.is_match:
            status = FOUND
        print(_json_line(name, verdict) if args.json else _text_line(name, verdict))
    engine.close()
    return status if status == FOUND or not errors else ERROR


def _replace(config: Config, changes: dict[str, Any]) -> Config:
    return dataclasses.replace(config, **changes)


def _text_line(name: str, verdict: Verdict) -> str:
    if verdict.match is not None:
        m = verdict.match
        entry = f" entry={m.entry_id!r}" if m.entry_id else ""
        return (
            f"{name}: MATCH list={m.list_name!r}{entry} algorithm={m.algorithm} "
            f"distance={m.distance} frame={m.frame}"
        )
    if verdict.is_uninspectable:
        reason = verdict.reason.value if verdict.reason else "unknown"
        return f"{name}: UNINSPECTABLE reason={reason} ({verdict.detail})"
    return f"{name}: CLEAN"


def _json_line(name: str, verdict: Verdict) -> str:
    return json.dumps(verdict_record(name, verdict), sort_keys=False)


def verdict_record(name: str, verdict: Verdict) -> dict[str, Any]:
    """A file's verdict as a JSON-ready mapping (``match --json``, ``scan --json``)."""
    m = verdict.match
    return {
        "file": name,
        "verdict": verdict.kind.value.upper(),
        "algorithm": m.algorithm if m else None,
        "distance": m.distance if m else None,
        "list": m.list_name if m else None,
        "entry_id": m.entry_id if m else None,
        "frame": m.frame if m else None,
        "reason": verdict.reason.value if verdict.reason else None,
        "detail": verdict.detail,
        "sha256": verdict.sha256,
        "hashes": dict(verdict.hashes),
    }


def _lists_check(args: argparse.Namespace) -> int:
    status = OK
    for name in args.files:
        try:
            parsed = parse_file(name, algorithm=args.algorithm)
        except ListError as exc:
            for line in exc.errors:
                print(line, file=sys.stderr)
            print(f"{name}: INVALID, {len(exc.errors)} errors")
            status = ERROR
            continue
        counts = parsed.counts
        summary = ", ".join(f"{a} {n}" for a, n in counts.items()) or "no entries"
        print(f"{name}: OK, {sum(counts.values())} entries ({summary})")
    return status
