"""Computing signals: PDQ (pdqhash), pHash and dHash (imagehash), and exact digests.

Values are ``bytes``, most significant bit first, so that :func:`safemedia.signals.to_hex` prints
PDQ exactly as python-threatexchange does and pHash/dHash exactly as ``str(imagehash.phash(im))``.
Images are expected to come from :func:`safemedia.imaging.decode` (RGB, oriented, flattened).

A frame that :func:`~safemedia.imaging.decode` reduced (JPEG DCT scaling or block averaging)
carries ``image.info[REDUCTION]``; PDQ then hashes it as the full-resolution image
(:mod:`safemedia.pdq`).
Any other image is hashed by ``pdqhash`` as it is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import imagehash
import numpy as np
import pdqhash
from numpy.typing import NDArray
from PIL import Image

from safemedia.pdq import pdq_from_reduced

__all__ = [
    "REDUCTION",
    "ImageHash",
    "Reduction",
    "hash_bytes",
    "hash_image",
    "pdq_dihedral",
    "pdq_with_dihedral",
]

#: ``Image.info`` key of a reduced frame's :class:`Reduction`.
REDUCTION = "safemedia.reduction"

_DIGESTS = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256}


@dataclass(frozen=True, slots=True)
class ImageHash:
    """A perceptual hash value; ``quality`` is PDQ's 0-100 quality (``None`` for others)."""

    value: bytes
    quality: int | None = None


@dataclass(frozen=True, slots=True)
class Reduction:
    """How a frame was reduced: ``scale`` x ``scale`` blocks of a ``full_size`` (w, h) image.

    ``reversed_x`` / ``reversed_y``: the blocks are aligned to the right / bottom edge (the frame
    was mirrored or rotated after reduction, by its EXIF orientation). ``scale_y``, when set, is
    the block height where it differs from the width ``scale``.
    """

    full_size: tuple[int, int]
    scale: int
    reversed_x: bool = False
    reversed_y: bool = False
    scale_y: int = 0

    @property
    def scales(self) -> tuple[int, int]:
        """Block (width, height)."""
        return self.scale, self.scale_y or self.scale

    def fits(self, image: Image.Image) -> bool:
        """Whether ``image`` has the size this reduction gives."""
        (width, height), (sx, sy) = self.full_size, self.scales
        return sx >= 1 and sy >= 1 and image.size == (-(-width // sx), -(-height // sy))


def hash_image(algorithm: str, image: Image.Image) -> ImageHash:
    """Hash one RGB frame with ``pdq``, ``phash`` or ``dhash``; :class:`ValueError` otherwise."""
    name = algorithm.strip().lower()
    if name == "pdq":
        reduction = _reduction(image)
        if reduction is not None:
            values, quality = _pdq_reduced(image, reduction, dihedral=False)
            return ImageHash(values[0], quality)
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
    return pdq_with_dihedral(image)[1]


def pdq_with_dihedral(image: Image.Image) -> tuple[ImageHash, tuple[bytes, ...]]:
    """The plain PDQ hash with its quality, and the eight dihedral hashes, computed once."""
    reduction = _reduction(image)
    if reduction is not None:
        values, quality = _pdq_reduced(image, reduction, dihedral=True)
        return ImageHash(values[0], quality), tuple(values)
    hashes, quality = pdqhash.compute_dihedral(_rgb_array(image))
    packed = tuple(_pack(bits) for bits in hashes)
    return ImageHash(packed[0], int(quality)), packed


def hash_bytes(algorithm: str, body: bytes) -> bytes:
    """The ``md5``, ``sha1`` or ``sha256`` digest of ``body``; :class:`ValueError` otherwise."""
    try:
        digest = _DIGESTS[algorithm.strip().lower()]
    except KeyError:
        raise ValueError(f"not an exact-match algorithm: {algorithm!r}") from None
    return digest(body).digest()


def _reduction(image: Image.Image) -> Reduction | None:
    reduction = image.info.get(REDUCTION)
    if isinstance(reduction, Reduction) and max(reduction.scales) > 1 and reduction.fits(image):
        return reduction
    return None


def _pdq_reduced(
    image: Image.Image, reduction: Reduction, *, dihedral: bool
) -> tuple[list[bytes], int]:
    return pdq_from_reduced(
        _rgb_array(image),
        reduction.full_size,
        reduction.scales,
        reversed_axes=(reduction.reversed_x, reduction.reversed_y),
        dihedral=dihedral,
    )


def _rgb_array(image: Image.Image) -> NDArray[np.uint8]:
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _pack(bits: NDArray[np.integer]) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
