"""Computing signals: PDQ (pdqhash), pHash and dHash (imagehash), and exact digests.

Values are ``bytes``, most significant bit first, so that :func:`safemedia.signals.to_hex` prints
PDQ exactly as python-threatexchange does and pHash/dHash exactly as ``str(imagehash.phash(im))``.
Images are expected to come from :func:`safemedia.imaging.decode` (RGB, oriented, flattened).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import imagehash
import numpy as np
import pdqhash
from numpy.typing import NDArray
from PIL import Image

__all__ = ["ImageHash", "hash_bytes", "hash_image", "pdq_dihedral"]

_DIGESTS = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256}


@dataclass(frozen=True, slots=True)
class ImageHash:
    """A perceptual hash value; ``quality`` is PDQ's 0-100 quality (``None`` for others)."""

    value: bytes
    quality: int | None = None


def hash_image(algorithm: str, image: Image.Image) -> ImageHash:
    """Hash one RGB frame with ``pdq``, ``phash`` or ``dhash``; :class:`ValueError` otherwise."""
    name = algorithm.strip().lower()
    if name == "pdq":
        bits, quality = pdqhash.compute(_rgb_array(image))
        return ImageHash(_pack(bits), int(quality))
    if name == "phash":
        return ImageHash(bytes.fromhex(str(imagehash.phash(image))))
    if name == "dhash":
        return ImageHash(bytes.fromhex(str(imagehash.dhash(image))))
    raise ValueError(f"not a perceptual algorithm: {algorithm!r}")


def pdq_dihedral(image: Image.Image) -> tuple[bytes, ...]:
    """PDQ's eight dihedral hashes (original, rotations 90/180/270, flips x/y, the diagonals).

    The first is the plain hash; a rotated or mirrored copy of the image hashes (within a few bits)
    to one of the others, so matching against all eight catches those copies.
    """
    hashes, _qualities = pdqhash.compute_dihedral(_rgb_array(image))
    return tuple(_pack(bits) for bits in hashes)


def hash_bytes(algorithm: str, body: bytes) -> bytes:
    """The ``md5``, ``sha1`` or ``sha256`` digest of ``body``; :class:`ValueError` otherwise."""
    try:
        digest = _DIGESTS[algorithm.strip().lower()]
    except KeyError:
        raise ValueError(f"not an exact-match algorithm: {algorithm!r}") from None
    return digest(body).digest()


def _rgb_array(image: Image.Image) -> NDArray[np.uint8]:
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _pack(bits: NDArray[np.integer]) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
