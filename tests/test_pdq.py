"""safemedia's own PDQ from reduced images: exact at full size, faithful when reduced."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from safemedia.hashing import REDUCTION, Reduction, hash_image, pdq_dihedral
from safemedia.imaging import decode, to_rgb
from safemedia.pdq import faithful_scale, pdq_from_reduced

IMAGES = Path(__file__).parent / "fixtures" / "pdq" / "images"
# Every distinct fixture except the copies of one photo in other modes and orientations.
FIXTURES = sorted(
    str(p.relative_to(IMAGES))
    for p in IMAGES.rglob("*")
    if p.is_file() and not {"dih", "modes"} & set(p.parts)
)


def distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def blobs(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like image: smooth colour blobs plus fine texture, so every DCT band matters."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8))
    smooth = np.asarray(base.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    texture = rng.integers(-12, 13, (height, width, 1), dtype=np.int16)
    return Image.fromarray(np.clip(smooth + texture, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("name", FIXTURES)
def test_own_pdq_at_full_size_is_bit_exact_with_pdqhash(name: str) -> None:
    rgb = np.asarray(to_rgb(Image.open(IMAGES / name)))
    expected, quality = pdqhash.compute_dihedral(rgb)
    ours, our_quality = pdq_from_reduced(rgb, (rgb.shape[1], rgb.shape[0]), 1, dihedral=True)
    theirs = [np.packbits(bits).tobytes() for bits in expected]
    assert our_quality == quality
    assert ours[0] == theirs[0]
    if quality >= 50:
        assert ours == theirs
    else:  # near-flat images: float rounding may swap two coefficients at the median
        assert max(map(distance, ours, theirs)) <= 2


@pytest.mark.parametrize(
    ("size", "scale"),
    [((4000, 3000), 4), ((3000, 4000), 4), ((6000, 4000), 8), ((1600, 1200), 2), ((800, 600), 1)],
)
def test_faithful_scale_keeps_blocks_within_a_quarter_of_the_pdq_window(
    size: tuple[int, int], scale: int
) -> None:
    assert faithful_scale(*size) == scale


@pytest.mark.parametrize("orientation", range(1, 9))
def test_drafted_jpeg_hashes_like_full_resolution_in_every_orientation(orientation: int) -> None:
    # 2051 x 1531 is not a multiple of the scale: mirrored frames have their part-block first.
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    blobs(2051, 1531, orientation).save(out, "JPEG", quality=90, exif=exif.tobytes())
    fast = decode(out.getvalue(), max_pixels=10**8, max_frames=1).frames[0]
    full = decode(out.getvalue(), max_pixels=10**8, max_frames=1, full_resolution=True).frames[0]
    assert fast.info[REDUCTION].scale == 2
    assert fast.width * 2 >= full.width > fast.width
    assert distance(hash_image("pdq", fast).value, hash_image("pdq", full).value) <= 4
    fast_variants, full_variants = pdq_dihedral(fast), pdq_dihedral(full)
    assert max(map(distance, fast_variants, full_variants)) <= 4


def test_large_png_is_block_averaged_and_hashes_like_full_resolution() -> None:
    out = io.BytesIO()
    blobs(2100, 1100, 9).save(out, "PNG", compress_level=1)
    fast = decode(out.getvalue(), max_pixels=10**8, max_frames=1).frames[0]
    full = decode(out.getvalue(), max_pixels=10**8, max_frames=1, full_resolution=True).frames[0]
    assert fast.size == (525, 550)  # each axis by a quarter of its PDQ window
    assert distance(hash_image("pdq", fast).value, hash_image("pdq", full).value) <= 2


def test_a_reduction_that_does_not_fit_the_frame_is_ignored() -> None:
    image = blobs(300, 200, 1)
    image.info[REDUCTION] = Reduction((3000, 2000), 4)  # 750x500 would fit, 300x200 does not
    assert (
        hash_image("pdq", image).value
        == np.packbits(pdqhash.compute(np.asarray(image))[0]).tobytes()
    )
