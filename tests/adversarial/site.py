"""The site the HTTP, fault and load suites serve: harmless synthetic images, a hash list, a config.

Usage::

    site = build_site(tmp_path)                     # images, list.txt (pdq hashes), pages
    config = write_config(site, tmp_path / "srv")   # safemedia.toml + its own copy of the list

``listed-*`` images are "known bad" only because their PDQ hashes are on the list; they are
pictures of noise and shapes like every other image here. Their variants (mirrored, re-encoded,
the third frame of a GIF) are not on the list: the engine must find them by itself.
"""

from __future__ import annotations

import hashlib
import io
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from safemedia import hashing, imaging
from tests.synthetic import encode, picture

CLEAN_COUNT = 50
LISTED = ("listed-a.jpg", "listed-b.png", "listed-c.webp", "listed-d.jpg")
SIZE = (320, 240)
NOT_AN_IMAGE = "not-an-image.bin"


def distinct_picture(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    """A noisy gradient with random shapes on it: far apart in PDQ for different seeds."""
    img = picture(seed, size)
    rng = random.Random(seed)
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(10):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        box = (x0, y0, x0 + rng.randrange(20, w // 2), y0 + rng.randrange(20, h // 2))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)(box, fill=colour)
    return img


def pdq_of(body: bytes) -> bytes:
    """The PDQ hash of the first frame, through safemedia's own decode pipeline."""
    decoded = imaging.decode(body, max_pixels=100_000_000, max_frames=64)
    return hashing.hash_image("pdq", decoded.frames[0]).value


def _distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


@dataclass
class Site:
    """The served folder: ``root/static/*`` and the hash list ``root/list.txt``."""

    root: Path
    clean: dict[str, str] = field(default_factory=dict)  # name -> sha256
    listed: dict[str, str] = field(default_factory=dict)  # name -> pdq hex
    variants: tuple[str, ...] = ()
    spare: str = ""  # a clean image that a test adds to the list later
    spare_pdq: str = ""

    @property
    def static(self) -> Path:
        return self.root / "static"

    @property
    def list_path(self) -> Path:
        return self.root / "list.txt"

    def body(self, name: str) -> bytes:
        return (self.static / name).read_bytes()


def build_site(root: Path) -> Site:
    """Write the images and the list; checks that no clean image is near a listed one."""
    site = Site(root)
    site.static.mkdir(parents=True, exist_ok=True)
    for i in range(CLEAN_COUNT):
        body = encode(distinct_picture(1000 + i), "JPEG", quality=85)
        name = f"clean-{i:02d}.jpg"
        (site.static / name).write_bytes(body)
        site.clean[name] = hashlib.sha256(body).hexdigest()
    formats = {"jpg": ("JPEG", {"quality": 90}), "png": ("PNG", {}), "webp": ("WEBP", {})}
    pictures: dict[str, Image.Image] = {}
    for n, name in enumerate(LISTED):
        img = distinct_picture(2000 + n)
        fmt, params = formats[name.rsplit(".", 1)[1]]
        body = encode(img, fmt, **params)
        (site.static / name).write_bytes(body)
        site.listed[name] = pdq_of(body).hex()
        pictures[name] = img
    a = pictures["listed-a.jpg"]
    first, second = distinct_picture(3000), distinct_picture(3001)
    variants = {
        "mirror-a.jpg": encode(ImageOps.mirror(a), "JPEG", quality=90),
        "rotated-a.png": encode(a.rotate(90, expand=True), "PNG"),
        "reencoded-a.jpg": encode(a.resize((288, 216)), "JPEG", quality=40),
        "frame3-a.gif": _gif([first, second, a]),
    }
    for name, body in variants.items():
        (site.static / name).write_bytes(body)
    site.variants = tuple(variants)
    (site.static / NOT_AN_IMAGE).write_bytes(b"just some text, not an image at all\n" * 64)
    spare = encode(distinct_picture(4000), "JPEG", quality=85)
    site.spare = "spare.jpg"
    (site.static / site.spare).write_bytes(spare)
    site.spare_pdq = pdq_of(spare).hex()
    site.list_path.write_text(
        "".join(f"pdq {value} {name}\n" for name, value in site.listed.items())
    )
    _check_apart(site)
    return site


def _gif(frames: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def _check_apart(site: Site) -> None:
    """No clean image may be within 2x the match distance of a listed one (else tests lie)."""
    listed = [bytes.fromhex(v) for v in site.listed.values()]
    for name in [*site.clean, site.spare]:
        decoded = imaging.decode(site.body(name), max_pixels=10**8, max_frames=4)
        for variant in hashing.pdq_dihedral(decoded.frames[0]):
            nearest = min(_distance(variant, entry) for entry in listed)
            assert nearest > 62, f"{name} is {nearest} bits from a listed image"


def write_config(site: Site, where: Path, **extra: Any) -> Path:
    """A ``safemedia.toml`` in ``where`` with its own copy of the list and its own SQLite store."""
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(site.list_path, where / "list.txt")
    values: dict[str, Any] = {
        "hash_lists": ["list.txt"],
        "store": f"sqlite:///{where / 'state.db'}",
        "list_reload_interval": 0.2,
        "max_body_bytes": 8 << 20,
    }
    smtp = extra.pop("smtp", None)
    values.update(extra)
    lines = ["[safemedia]"] + [f"{key} = {_toml(value)}" for key, value in values.items()]
    if smtp:
        lines.append("[safemedia.smtp]")
        lines += [f"{key} = {_toml(value)}" for key, value in smtp.items()]
    path = where / "safemedia.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
