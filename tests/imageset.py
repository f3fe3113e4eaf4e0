"""A folder of harmless synthetic images and a hash list made from some of them.

Usage::

    images = make_image_set(tmp_path)   # tmp_path/images/*, tmp_path/list.txt
    images.body("listed.jpg"); images.list_path; images.listed   # names on the list

The list holds ``sha256 <hex> <id>`` lines (python-threatexchange style) for the ``listed*``
files. :meth:`ImageSet.add_to_list` appends one more, as an operator updating the list would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tests.synthetic import encode, jpeg, picture, png

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
    b'<rect width="4" height="4"/></svg>'
)


@dataclass
class ImageSet:
    root: Path

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def list_path(self) -> Path:
        return self.root / "list.txt"

    def body(self, name: str) -> bytes:
        return (self.images / name).read_bytes()

    def add_to_list(self, name: str) -> None:
        digest = hashlib.sha256(self.body(name)).hexdigest()
        with self.list_path.open("a") as f:
            f.write(f"sha256 {digest} {name}\n")


def make_image_set(root: Path) -> ImageSet:
    """Write the images and the list; ``listed.*`` are on the list, the rest are not."""
    images = ImageSet(root)
    images.images.mkdir(parents=True, exist_ok=True)
    files = {
        "clean.jpg": jpeg(10),
        "clean2.jpg": jpeg(11),
        "later.jpg": jpeg(12),
        "fresh.jpg": jpeg(13, (320, 240)),
        "clean.png": png(14),
        "listed.jpg": jpeg(20),
        "listed.png": png(21),
        "listed.bin": jpeg(22),
        "picture.svg": SVG,
        "notes.txt": b"just text\n" * 50,
        "big.jpg": encode(picture(30, (900, 700)), "JPEG", quality=100),
        "broken.jpg": jpeg(31)[:200],
    }
    for name, body in files.items():
        (images.images / name).write_bytes(body)
    images.list_path.write_text("# test list: hashes of synthetic images\n")
    for name in ("listed.jpg", "listed.png", "listed.bin"):
        images.add_to_list(name)
    return images
