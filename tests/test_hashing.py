"""Signals computed from pixels and bytes, in the text form other tools print."""

from __future__ import annotations

import hashlib

import imagehash
import numpy as np
import pdqhash
import pytest
from PIL import Image

from safemedia.hashing import ImageHash, hash_bytes, hash_image, pdq_dihedral
from safemedia.signals import SIGNALS, to_hex


def photo_like(seed: int = 1) -> Image.Image:
    """Smooth random blobs: enough structure for a high PDQ quality."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((320, 240), Image.Resampling.BICUBIC)


@pytest.mark.parametrize("algorithm", ["phash", "dhash"])
def test_imagehash_signals_print_exactly_as_imagehash_does(algorithm: str) -> None:
    im = photo_like()
    expected = str(getattr(imagehash, algorithm)(im))
    got = hash_image(algorithm, im)
    assert to_hex(got.value) == expected
    assert len(got.value) * 8 == SIGNALS[algorithm].bits
    assert got.quality is None


def test_pdq_is_256_bits_most_significant_first_with_quality() -> None:
    im = photo_like()
    bits, quality = pdqhash.compute(np.asarray(im))
    text = "".join(str(int(b)) for b in bits)
    expected = "".join(f"{int(text[i : i + 4], 2):x}" for i in range(0, 256, 4))
    got = hash_image("PDQ", im)
    assert to_hex(got.value) == expected  # the python-threatexchange hex form
    assert got.quality == quality
    assert 0 <= (got.quality or 0) <= 100


def test_flat_image_has_low_pdq_quality() -> None:
    assert (hash_image("pdq", Image.new("RGB", (64, 64), (90, 90, 90))).quality or 0) < 50


def test_pdq_dihedral_gives_eight_hashes_the_first_plain() -> None:
    im = photo_like(2)
    hashes = pdq_dihedral(im)
    assert len(hashes) == 8
    assert hashes[0] == hash_image("pdq", im).value
    assert len(set(hashes)) == 8


def test_a_mirrored_image_matches_one_of_the_dihedral_hashes() -> None:
    im = photo_like(3)
    mirrored = hash_image("pdq", im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)).value
    distances = [
        (int.from_bytes(h, "big") ^ int.from_bytes(mirrored, "big")).bit_count()
        for h in pdq_dihedral(im)
    ]
    assert min(distances) <= 8
    assert distances[0] > 31


def test_non_rgb_images_are_converted_before_hashing() -> None:
    im = photo_like(4)
    assert hash_image("pdq", im.convert("RGBX")) == hash_image("pdq", im)


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256"])
def test_exact_digests_are_of_the_raw_bytes(algorithm: str) -> None:
    body = b"\x89PNG not really"
    assert hash_bytes(algorithm.upper(), body) == hashlib.new(algorithm, body).digest()
    assert len(hash_bytes(algorithm, body)) * 8 == SIGNALS[algorithm].bits


def test_unknown_algorithms_are_refused() -> None:
    with pytest.raises(ValueError, match="not a perceptual"):
        hash_image("md5", photo_like())
    with pytest.raises(ValueError, match="not an exact"):
        hash_bytes("pdq", b"")


def test_image_hash_is_a_small_frozen_value() -> None:
    h = ImageHash(b"\x01", 80)
    with pytest.raises(AttributeError):
        h.quality = 3  # type: ignore[misc]
