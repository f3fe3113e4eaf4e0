"""Demo tooling for the example forums and ``scripts/demo``.

Everything here is harmless and synthetic: the "listed" demo image is a colourful pattern drawn
with numpy and Pillow, and the demo hash list holds its hashes, so the demo can show a block
without any real abuse material anywhere near it.

Usage::

    python examples/demo_tools.py prepare flask|django   # images, demo list, uploads, fresh state
    python examples/demo_tools.py smtp-sink [--port 8025] [--spool DIR]  # prints received mail
    python examples/demo_tools.py verify --spool DIR ADDRESS  # safemedia email verify + confirm
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent
LISTED_IMAGE = "listed-pattern.png"
ALLOWED_IMAGE = "landscape.png"
APPS = {"flask": "flask_app", "django": "django_app"}
DEMO_ADDRESS = "moderator@forum.example"
SMTP_PORT = 8025
WIDTH, HEIGHT = 640, 480


def draw_listed_pattern() -> Image.Image:
    """The image the demo list "knows": a spiral of hues over a checkerboard."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    cx, cy = WIDTH * 0.42, HEIGHT * 0.55
    r = np.hypot(x - cx, y - cy)
    angle = np.arctan2(y - cy, x - cx)
    hue = (r / 90.0 + angle / (2 * np.pi) * 3) % 1.0
    sat = 0.65 + 0.35 * np.cos(r / 17.0) ** 2
    val = 0.55 + 0.45 * (((x // 80) + (y // 80)) % 2)
    hsv = np.stack([hue * 255, sat * 255, val * 255], axis=-1).astype(np.uint8)
    return Image.fromarray(hsv, "HSV").convert("RGB")


def draw_landscape() -> Image.Image:
    """An ordinary picture no list contains: sky, sun, hills and a lake."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    t = y / HEIGHT
    img = np.stack([90 + 140 * t, 150 + 80 * t, 235 - 30 * t], axis=-1)
    img[np.hypot(x - 480, y - 130) < 55] = (255, 214, 90)
    zero = np.zeros_like(x)
    far = y > 300 + 50 * np.sin(x / 110.0)
    img[far] = np.stack([zero + 60, 140 + 30 * np.sin(x / 37.0), zero + 70], axis=-1)[far]
    near = y > 370 + 35 * np.sin(x / 70.0 + 1.3)
    img[near] = np.stack([zero + 40, 105 + 20 * np.cos(y / 9.0), zero + 50], axis=-1)[near]
    lake = ((x - 210) / 170) ** 2 + ((y - 455) / 30) ** 2 < 1
    img[lake] = np.stack([70 + 20 * np.sin(x / 13.0), zero + 125, zero + 205], axis=-1)[lake]
    return Image.fromarray(img.clip(0, 255).astype(np.uint8), "RGB")


def draw_logo() -> Image.Image:
    """The forum's small logo (a static file: WhiteNoise serves it in the Django example)."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    inside = np.hypot(x - 31.5, y - 31.5) < 30
    img = np.full((64, 64, 3), 255.0)
    img[inside] = np.stack([40 + 2 * x, 90 + y, 200 - x], axis=-1)[inside]
    return Image.fromarray(img.astype(np.uint8), "RGB")


def save_png(image: Image.Image, path: Path) -> None:
    """Write ``image`` as a PNG with no metadata, only when the pixels changed."""
    if path.exists():
        with Image.open(path) as old:
            same = old.mode == image.mode and old.size == image.size
            if same and old.tobytes() == image.tobytes():
                return
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")


def write_images(examples: Path = EXAMPLES) -> None:
    """Draw the demo images into ``demo/images`` and the logo into the apps' static folders."""
    save_png(draw_listed_pattern(), examples / "demo" / "images" / LISTED_IMAGE)
    save_png(draw_landscape(), examples / "demo" / "images" / ALLOWED_IMAGE)
    save_png(draw_logo(), examples / "flask_app" / "static" / "logo.png")
    save_png(draw_logo(), examples / "django_app" / "gallery" / "static" / "gallery" / "logo.png")


def demo_list_text(examples: Path = EXAMPLES) -> str:
    """The demo hash list: the listed pattern's PDQ hash, computed by safemedia's own hashing."""
    from safemedia.hashing import hash_image
    from safemedia.imaging import decode
    from safemedia.signals import to_hex

    body = (examples / "demo" / "images" / LISTED_IMAGE).read_bytes()
    decoded = decode(body, max_pixels=WIDTH * HEIGHT, max_frames=1)
    pdq = hash_image("pdq", decoded.frames[0]).value
    return (
        "# safemedia demo hash list: the hashes of examples/demo/images/listed-pattern.png,\n"
        "# a harmless synthetic pattern drawn by examples/demo_tools.py. Not real list data.\n"
        f"pdq {to_hex(pdq)} demo-listed-pattern\n"
    )


def write_demo_list(examples: Path = EXAMPLES) -> None:
    """Write ``demo/demo-list.txt`` when its content differs."""
    text = demo_list_text(examples)
    path = examples / "demo" / "demo-list.txt"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def prepare(app: str, examples: Path = EXAMPLES) -> Path:
    """Images, demo list, the forum's uploads seeded with both images, and a fresh state."""
    app_dir = examples / APPS[app]
    write_images(examples)
    write_demo_list(examples)
    uploads = app_dir / "uploads"
    uploads.mkdir(exist_ok=True)
    for name in (LISTED_IMAGE, ALLOWED_IMAGE):  # the landscape is the newest: shown first
        shutil.copyfile(examples / "demo" / "images" / name, uploads / name)
        time.sleep(0.01)
    var = app_dir / "var"
    if var.exists():
        shutil.rmtree(var)
    (var / "mail").mkdir(parents=True)
    return app_dir


class PrintingHandler:
    """aiosmtpd handler: print each message to the terminal, keep a copy in a spool folder."""

    def __init__(self, spool: Path | None, *, echo: bool = True) -> None:
        self.spool = spool
        self.echo = echo
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw: bytes = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
        self.messages.append(message)
        if self.echo:
            print(format_mail(message, envelope.mail_from, envelope.rcpt_tos), flush=True)
        if self.spool is not None:
            name = f"{time.time_ns()}-{len(self.messages):04d}.eml"
            (self.spool / name).write_bytes(raw)
        return "250 Message accepted for delivery"


def format_mail(message: Any, sender: str, recipients: Sequence[str]) -> str:
    """A received mail as the sink prints it: envelope, main headers, the text body."""
    bar = "=" * 72
    lines = [bar, f"SMTP sink received mail from {sender} to {', '.join(recipients)}"]
    for header in ("From", "To", "Subject", "Date"):
        if message[header] is not None:
            lines.append(f"{header}: {message[header]}")
    lines.append("")
    lines.append(mail_text(message).rstrip())
    lines.append(bar)
    return "\n".join(lines)


def mail_text(message: Any) -> str:
    """The plain-text body of a message (an ``EmailMessage`` from the default policy)."""
    if isinstance(message, EmailMessage):
        part = message.get_body(preferencelist=("plain", "html"))
        if part is not None:
            content = part.get_content()
            return content if isinstance(content, str) else ""
    payload = message.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)


@contextlib.contextmanager
def smtp_sink(
    host: str = "127.0.0.1", port: int = SMTP_PORT, spool: Path | None = None, *, echo: bool = True
) -> Iterator[PrintingHandler]:
    """An aiosmtpd server on its own thread for the duration of the ``with`` block."""
    from aiosmtpd.controller import Controller

    if spool is not None:
        spool.mkdir(parents=True, exist_ok=True)
    handler = PrintingHandler(spool, echo=echo)
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


def run_smtp_sink(host: str, port: int, spool: Path | None) -> None:
    """Serve SMTP on ``host:port`` until SIGINT or SIGTERM."""
    with smtp_sink(host, port, spool):
        _wait_for_signal()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("SMTP sink ready; the mail it receives is printed here", flush=True)
    while not stop.wait(0.5):
        pass


CODE_PATTERN = re.compile(r"safemedia email confirm\s+(\S+)")


def find_code(text: str) -> str | None:
    """The verification code in a verification mail's text."""
    found = CODE_PATTERN.search(text)
    return found.group(1) if found else None


def safemedia_command(app_dir: Path) -> list[str]:
    """How to run the ``safemedia`` CLI for the app in ``app_dir``: ``manage.py safemedia`` for
    Django (its config is in settings), else the command itself (reads ``./safemedia.toml``)."""
    if (app_dir / "manage.py").exists():
        return [sys.executable, "manage.py", "safemedia"]
    return [sys.executable, "-m", "safemedia"]


def verify_address(
    address: str,
    spool: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Run ``safemedia email verify``, read the code from the sink's spool, confirm it."""
    app_dir = cwd or Path.cwd()
    safemedia = safemedia_command(app_dir)
    before = set(spool.glob("*.eml"))
    subprocess.run([*safemedia, "email", "verify", address], check=True, cwd=app_dir, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(set(spool.glob("*.eml")) - before):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            code = find_code(mail_text(message))
            if code is not None:
                confirm = [*safemedia, "email", "confirm", code]
                subprocess.run(confirm, check=True, cwd=app_dir, env=env)
                return
        time.sleep(0.2)
    raise SystemExit(f"demo: no verification mail for {address} arrived within {timeout:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo_tools", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="images, demo list, seeded uploads, fresh state")
    p.add_argument("app", choices=sorted(APPS))
    sub.add_parser("images", help="draw the demo images and write the demo list")
    s = sub.add_parser("smtp-sink", help="an SMTP server that prints the mail it receives")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=SMTP_PORT)
    s.add_argument("--spool", type=Path, help="also keep each message as a file here")
    v = sub.add_parser("verify", help="verify ADDRESS through the sink's spool (cwd: the app)")
    v.add_argument("--spool", type=Path, required=True)
    v.add_argument("address", nargs="?", default=DEMO_ADDRESS)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        print(f"demo: prepared {prepare(args.app)}")
    elif args.command == "images":
        write_images()
        write_demo_list()
    elif args.command == "smtp-sink":
        run_smtp_sink(args.host, args.port, args.spool)
    elif args.command == "verify":
        verify_address(args.address, args.spool)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
