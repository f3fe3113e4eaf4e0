"""Harmless synthetic test images, drawn with Pillow and numpy."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def picture(seed: int, size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A deterministic noisy gradient, different for each ``seed``."""
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [(x * (seed % 7 + 1)) % 256, (y * (seed % 5 + 2)) % 256, ((x + y) * 3) % 256], axis=-1
    )
    noise = rng.integers(0, 40, size=(height, width, 3))
    return Image.fromarray(((base + noise) % 256).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def jpeg(seed: int, size: tuple[int, int] = (64, 48), quality: int = 85) -> bytes:
    """A small synthetic JPEG."""
    return encode(picture(seed, size), "JPEG", quality=quality)


def png(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small synthetic PNG."""
    return encode(picture(seed, size), "PNG")
