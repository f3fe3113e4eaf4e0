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


def gif_sequence(images: list[Image.Image], order: list[int], **params: object) -> bytes:
    """A GIF showing ``images[i]`` for each ``i`` in ``order``, repeats kept as repeated blocks.

    Pillow's writer merges a frame identical to the one before into it (adding the delays);
    here the images are encoded once, then each frame's blocks (extensions, descriptor, data)
    are copied in the order asked.
    """
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], optimize=False, **params)
    body = out.getvalue()
    flags = body[10]
    pos = 13 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
    head, blocks, start = body[:pos], [], pos
    while body[pos] != 0x3B:
        tag, pos = body[pos], pos + 1
        if tag == 0x2C:
            local = body[pos + 8]
            pos += 9 + ((3 << ((local & 7) + 1)) if local & 0x80 else 0) + 1
        else:
            pos += 1  # the extension's label
        while body[pos]:
            pos += body[pos] + 1
        pos += 1
        if tag == 0x2C:
            blocks.append(body[start:pos])
            start = pos
    assert len(blocks) == len(images), "Pillow merged frames: make the images differ"
    return head + b"".join(blocks[i] for i in order) + b";"
