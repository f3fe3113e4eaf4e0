"""PDQ computed from a block-reduced image as if from the full-resolution one.

PDQ (Meta's ``pdqhashing.cpp``) turns an image into luma, blurs it with two passes of box
filters in each direction (window ``ceil(side / 128)``), samples a 64x64 grid, takes 16x16 DCT
coefficients and sets a bit for each coefficient above their median. Everything up to the 64x64
grid is linear, so each grid value is a weighted sum of luma pixels with weights that depend only
on the image's size: ``grid = Wy @ luma @ Wx.T``.

A JPEG decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, ``Image.draft``) gives, to a close
approximation, the mean of each 2x2, 4x4 or 8x8 block. Summing the full-resolution weights over
each block gives weights for the reduced image that reproduce the full-resolution grid, so the hash
stays within a few bits of the full-resolution hash (python-threatexchange's) while only a
sixteenth of the pixels is decoded. Plain PDQ run on the reduced image instead drifts by up to 36
bits on textured photos, because its filter windows and sampling grid move with the image size.

With ``scale=1`` this is PDQ itself: it reproduces ``pdqhash`` bit for bit on Meta's vectors (on
near-flat images of quality below 50, float rounding can swap two coefficients at the median).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

__all__ = ["DIHEDRAL_NAMES", "faithful_scale", "faithful_scales", "pdq_from_reduced"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_GRID = 64
_MIN_SIDE = 5  # PDQ hashes nothing smaller (all-zero hash, quality 0)

#: The order of PDQ's dihedral hashes (pdqhash.compute_dihedral's order).
DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)

Floats = NDArray[np.float32]


def window(side: int) -> int:
    """PDQ's box-filter window along a side of ``side`` pixels."""
    return (side + 127) // 128


def faithful_scale(width: int, height: int) -> int:
    """The largest of 1, 2, 4, 8 whose blocks stay within a quarter of PDQ's filter window.

    Measured on 12 MP photos (docs/performance.md): blocks of a quarter window keep the hash within
    2 bits of full resolution; half a window drifts up to 8 bits on a brick wall.
    """
    limit = min(window(width), window(height)) // 4
    for scale in (8, 4, 2):
        if scale <= limit:
            return scale
    return 1


def faithful_scales(width: int, height: int) -> tuple[int, int]:
    """Block (width, height) of a quarter of PDQ's window along each axis, for ``Image.reduce``.

    PDQ's blur is separable, so each axis may be reduced by its own factor: a 40 x 2,000,000
    image keeps its 40 columns and is averaged over 4096 rows.
    """
    return max(1, window(width) // 4), max(1, window(height) // 4)


@dataclass(frozen=True, slots=True)
class _Band:
    """Sparse rows of a 64 x n weight matrix: ``weights[k]`` applies to pixels ``index[k]``."""

    index: NDArray[np.intp]  # 64 x band
    weights: Floats  # 64 x band, zero where a row's band is shorter


@lru_cache(maxsize=128)
def _band(full: int, scale: int, reduced: int, reversed_: bool) -> _Band:
    """The weights of the reduced pixels for PDQ's blurred 64-point grid along one axis.

    Built row by row over each grid point's support only (about four windows wide), so the cost
    does not grow with the image's length.
    """
    if -(-full // scale) != reduced:
        raise ValueError(f"{reduced} pixels is not {full} reduced by {scale}")
    w = window(full)
    half = (w + 2) // 2
    index = np.arange(full)
    lo = np.maximum(index - (w - half), 0)
    hi = np.minimum(index + half - 1, full - 1)
    inverse_count = 1.0 / (hi - lo + 1)
    samples = ((np.arange(_GRID) + 0.5) * full / _GRID).astype(np.int64)
    starts: list[int] = []
    rows: list[NDArray[np.float64]] = []
    for k in samples:
        # The second pass at sample k averages first-pass values m in [lo[k], hi[k]], each of
        # which averages pixels in [lo[m], hi[m]]: add 1/(count_k*count_m) over each such run.
        m = np.arange(lo[k], hi[k] + 1)
        first, last = int(lo[m[0]]), int(hi[m[-1]])
        steps = np.zeros(last - first + 2)
        value = inverse_count[k] * inverse_count[m]
        np.add.at(steps, lo[m] - first, value)
        np.add.at(steps, hi[m] + 1 - first, -value)
        dense = np.cumsum(steps[:-1])
        if reversed_:  # blocks aligned to the far end: work in mirrored coordinates
            dense = dense[::-1]
            first = full - 1 - last
        # Sum the pixels of each block: pad to whole blocks, then fold.
        block = first // scale
        pad_front = first - block * scale
        padded = np.concatenate([np.zeros(pad_front), dense])
        padded = np.concatenate([padded, np.zeros(-len(padded) % scale)])
        sums = padded.reshape(-1, scale).sum(axis=1)
        if reversed_:
            sums = sums[::-1]
            block = reduced - block - len(sums)
        starts.append(block)
        rows.append(sums)
    width = max(len(r) for r in rows)
    weights = np.zeros((_GRID, width))
    positions = np.zeros((_GRID, width), dtype=np.intp)
    for r, (start, sums) in enumerate(zip(starts, rows, strict=True)):
        weights[r, : len(sums)] = sums
        positions[r] = np.minimum(start + np.arange(width), reduced - 1)
    return _Band(positions, weights.astype(np.float32))


@lru_cache(maxsize=1)
def _dct() -> Floats:
    i = np.arange(1, 17, dtype=np.float64)[:, None]
    j = np.arange(_GRID, dtype=np.float64)[None, :]
    matrix = np.sqrt(2.0 / _GRID) * np.cos((np.pi / 2 / _GRID) * i * (2 * j + 1))
    result: Floats = matrix.astype(np.float32)
    return result


def pdq_from_reduced(
    rgb: NDArray[np.uint8],
    full_size: tuple[int, int],
    scale: int | tuple[int, int],
    *,
    reversed_axes: tuple[bool, bool] = (False, False),
    dihedral: bool = False,
) -> tuple[list[bytes], int]:
    """PDQ of the full-size image that ``rgb`` (H x W x 3) is the ``scale``-reduced form of.

    ``scale`` is the block size, or its (width, height).
    ``full_size`` is (width, height) at full resolution; ``reversed_axes`` says, per axis (x, y),
    whether the blocks are aligned to the far edge (the image was mirrored after reduction).
    Returns the hashes (the plain one, or all eight dihedral ones) and PDQ's quality.
    """
    full_w, full_h = full_size
    height, width = rgb.shape[0], rgb.shape[1]
    if full_w < _MIN_SIDE or full_h < _MIN_SIDE:
        return [bytes(32)] * (8 if dihedral else 1), 0
    scale_x, scale_y = (scale, scale) if isinstance(scale, int) else scale
    by = _band(full_h, scale_y, height, reversed_axes[1])
    bx = _band(full_w, scale_x, width, reversed_axes[0])
    # Blur-and-sample the rows first (each grid row reads only its band of image rows), in
    # float32 as PDQ does; no BLAS, whose threads stall on a busy machine.
    rows = np.einsum("kb,kbwc->kwc", by.weights, rgb[by.index], dtype=np.float32)
    luma = _luma(rows)
    grid = np.einsum("kls,ls->kl", luma[:, bx.index], bx.weights)
    quality = _quality(grid)
    dct = _dct()
    coefficients = ((dct @ grid) @ dct.T).astype(np.float32, copy=False)
    variants = _dihedral(coefficients) if dihedral else [coefficients]
    return [_bits(v) for v in variants], quality


def _luma(rgb: Floats) -> Floats:
    """PDQ's float luma, in its order of operations."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    result: Floats = _LUMA[0] * red + _LUMA[1] * green + _LUMA[2] * blue
    return result


def _quality(grid: Floats) -> int:
    down = np.trunc((grid[:-1, :] - grid[1:, :]) * np.float32(100) / np.float32(255))
    across = np.trunc((grid[:, :-1] - grid[:, 1:]) * np.float32(100) / np.float32(255))
    total = int(np.abs(down).astype(np.int64).sum() + np.abs(across).astype(np.int64).sum())
    return min(100, total // 90)


def _bits(coefficients: Floats) -> bytes:
    flat = coefficients.ravel()
    median = np.partition(flat, 127)[127]  # Torben's median of 256 values: the 128th smallest
    # Bit i*16+j is set for coefficient (i, j); the hex form starts from bit 255.
    return np.packbits((flat > median)[::-1]).tobytes()


def _dihedral(a: Floats) -> list[Floats]:
    odd = (np.arange(16) & 1).astype(bool)
    sign = np.where(odd, 1.0, -1.0).astype(np.float32)  # + for odd indices (even frequencies)
    checker = np.where(np.add.outer(np.arange(16), np.arange(16)) & 1, -1.0, 1.0).astype(np.float32)
    return [
        a,
        (a * sign[None, :]).T,  # rotate 90
        a * checker,  # rotate 180
        (a * sign[:, None]).T,  # rotate 270
        a * sign[:, None],  # flip x
        a * sign[None, :],  # flip y
        a.T,  # flip along the main diagonal
        (a * checker).T,  # flip along the other diagonal
    ]
