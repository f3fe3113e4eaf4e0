"""The hash algorithms safemedia knows: their names, sizes, default distances and text form.

Hash values travel as ``bytes`` (most significant bit first, as python-threatexchange prints
them) and are written as lowercase hex. Computing them from pixels is :mod:`safemedia.hashing`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """One algorithm: ``bits`` long; ``perceptual`` ones match within ``default_distance``."""

    name: str
    bits: int
    default_distance: int
    perceptual: bool

    @property
    def hex_length(self) -> int:
        return self.bits // 4


# Default distances, chosen from measurement (docs/matching.md, bench/bench_distances.py): PDQ's
# published 31; pHash 6 and dHash 4 catch everyday re-encodes and resizes while staying below the
# closest different photos seen (pHash 8, dHash 6).
SIGNALS: dict[str, SignalSpec] = {
    spec.name: spec
    for spec in (
        SignalSpec("pdq", 256, 31, True),
        SignalSpec("phash", 64, 6, True),
        SignalSpec("dhash", 64, 4, True),
        SignalSpec("md5", 128, 0, False),
        SignalSpec("sha1", 160, 0, False),
        SignalSpec("sha256", 256, 0, False),
    )
}

PERCEPTUAL = tuple(name for name, spec in SIGNALS.items() if spec.perceptual)
EXACT = tuple(name for name, spec in SIGNALS.items() if not spec.perceptual)


class HashFormatError(ValueError):
    """A hash's text is not a valid value for its algorithm."""


def signal(name: str) -> SignalSpec:
    """The spec for algorithm ``name`` (case-insensitive); :class:`KeyError` if unknown."""
    return SIGNALS[name.strip().lower()]


def parse_hex(algorithm: str, text: str) -> bytes:
    """Parse ``text`` as a hash of ``algorithm``; :class:`HashFormatError` says what is wrong."""
    try:
        spec = signal(algorithm)
    except KeyError:
        raise HashFormatError(f"unknown algorithm {algorithm!r}") from None
    value = text.strip().lower()
    if len(value) != spec.hex_length:
        raise HashFormatError(
            f"{spec.name} hash must be {spec.hex_length} hex digits, got {len(value)}"
        )
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise HashFormatError(f"{spec.name} hash is not hexadecimal: {text.strip()!r}") from None


def to_hex(value: bytes) -> str:
    """The lowercase hex form of a hash value."""
    return value.hex()
