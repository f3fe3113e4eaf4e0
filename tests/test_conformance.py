"""PDQ conformance against Meta's published vectors (tests/fixtures/pdq, BSD licence)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from safemedia.hashing import hash_image, pdq_dihedral
from safemedia.imaging import decode

FIXTURES = Path(__file__).parent / "fixtures" / "pdq"
IMAGES = FIXTURES / "images"
FULL_RESOLUTION: dict[str, str] = json.loads((FIXTURES / "expected.json").read_text())[
    "full_resolution"
]["hashes"]
MODES = sorted(p.name for p in (IMAGES / "misc-images" / "modes").iterdir())
DIHEDRAL = sorted(p.name for p in (IMAGES / "dih").iterdir())
PDQ_DISTANCE = 31


@cache
def pdq(name: str, *, full_resolution: bool = False) -> tuple[bytes, int]:
    body = (IMAGES / name).read_bytes()
    image = decode(body, max_pixels=100_000_000, max_frames=64, full_resolution=full_resolution)
    assert len(image.frames) == 1
    result = hash_image("pdq", image.frames[0])
    return result.value, result.quality or 0


def distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


@pytest.mark.parametrize("name", sorted(FULL_RESOLUTION))
def test_full_resolution_pipeline_reproduces_published_hashes_bit_exactly(name: str) -> None:
    value, quality = pdq(name, full_resolution=True)
    assert value.hex() == FULL_RESOLUTION[name]
    assert quality >= 50


@pytest.mark.parametrize("name", sorted(FULL_RESOLUTION))
def test_fast_pipeline_stays_within_8_bits_of_full_resolution(name: str) -> None:
    assert distance(pdq(name)[0], bytes.fromhex(FULL_RESOLUTION[name])) <= 8


@pytest.mark.parametrize("mode_file", MODES)
def test_every_pillow_mode_hashes_within_8_bits_of_the_original(mode_file: str) -> None:
    original = pdq("misc-images/modes/original.jpg")[0]
    assert distance(pdq(f"misc-images/modes/{mode_file}")[0], original) <= 8


def test_dihedral_hashes_of_the_original_match_each_rotation_and_flip() -> None:
    body = (IMAGES / "dih" / "bridge-1-original.jpg").read_bytes()
    frame = decode(body, max_pixels=100_000_000, max_frames=64).frames[0]
    variants = pdq_dihedral(frame)
    for index, name in enumerate(DIHEDRAL):
        rotated = pdq(f"dih/{name}")[0]
        # bridge-N-*.jpg is the N-th dihedral variant, in pdqhash's order.
        assert distance(rotated, variants[index]) <= PDQ_DISTANCE, name
        if index:
            assert distance(rotated, variants[0]) > PDQ_DISTANCE, name


@pytest.mark.parametrize("name", ["misc-images/small.jpg", "labelme-subset/q0003.jpg"])
def test_low_quality_vectors_report_quality_below_the_floor(name: str) -> None:
    assert pdq(name)[1] < 50
