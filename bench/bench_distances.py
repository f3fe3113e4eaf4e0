"""How far apart pHash, dHash and PDQ put edited copies and different images (docs/matching.md).

Run: ``.venv/bin/python bench/bench_distances.py`` (after ``pip install -e '.[bench]'``);
``--large`` instead measures PDQ on edited 12 MP camera JPEGs through the fast pipeline.

Images: 3x3 overlapping crops (half the width and height) of every sample photo in
``bench/photos.py``, plus a few low-detail synthetic images (flat colours, gradients, a circle,
text on white) such as sites serve as icons and banners. For each it computes the hashes of ten
everyday edits (JPEG quality 50, half size, noise, grey, brightness +20%, a text watermark, WebP,
PNG, a mirror image, a 5% crop) and prints, per algorithm, the distance percentiles of edited copies
to their originals and of pairs of different images, and how many different pairs fall within
each candidate distance.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.photos import photo, sources
from safemedia.hashing import hash_image, pdq_dihedral
from safemedia.imaging import decode

ALGORITHMS = ("phash", "dhash", "pdq")
Edit = Callable[[Image.Image], Image.Image]


def _recode(fmt: str, **params: object) -> Edit:
    def edit(im: Image.Image) -> Image.Image:
        out = io.BytesIO()
        im.save(out, fmt, **params)
        with Image.open(io.BytesIO(out.getvalue())) as again:
            return again.convert("RGB")

    return edit


def _noise(im: Image.Image) -> Image.Image:
    rng = np.random.default_rng(1)
    pixels = np.asarray(im, dtype=np.int16) + rng.integers(-12, 13, (im.height, im.width, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _watermark(im: Image.Image) -> Image.Image:
    out = im.copy()
    size = max(10, im.height // 16)
    ImageDraw.Draw(out).text(
        (im.width // 20, im.height - 2 * size),
        "© example.org",
        fill=(255, 255, 255),
        font_size=size,
    )
    return out


def _crop(im: Image.Image) -> Image.Image:
    dx, dy = im.width // 40, im.height // 40
    return im.crop((dx, dy, im.width - dx, im.height - dy))


EDITS: dict[str, Edit] = {
    "jpeg q50": _recode("JPEG", quality=50),
    "half size": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
    "noise": _noise,
    "grey": lambda im: im.convert("L").convert("RGB"),
    "brightness +20%": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "watermark": _watermark,
    "webp": _recode("WEBP", quality=80),
    "png": _recode("PNG"),
    "5% crop": _crop,
}


def _mirror(im: Image.Image) -> Image.Image:
    return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


GEOMETRIC: dict[str, Edit] = {"mirror": _mirror}


def originals() -> list[tuple[str, Image.Image]]:
    images: list[tuple[str, Image.Image]] = []
    for name, load in sources().items():
        photo = load()
        w, h = photo.width // 2, photo.height // 2
        for i in range(3):
            for j in range(3):
                left, top = (photo.width - w) * i // 2, (photo.height - h) * j // 2
                images.append((f"{name}/{i}{j}", photo.crop((left, top, left + w, top + h))))
    for k, colour in enumerate([(250, 250, 250), (30, 60, 200), (200, 30, 30)]):
        images.append((f"flat/{k}", Image.new("RGB", (400, 300), colour)))
    ramp = np.linspace(0, 255, 400, dtype=np.float32)
    images.append(
        ("ramp/x", Image.fromarray(np.tile(ramp, (300, 1)).astype(np.uint8)).convert("RGB"))
    )
    images.append(
        (
            "ramp/y",
            Image.fromarray(np.tile(ramp[:300, None], (1, 400)).astype(np.uint8)).convert("RGB"),
        )
    )
    for k, (text, colour) in enumerate([("Welcome", (0, 0, 0)), ("SALE 50%", (200, 0, 0))]):
        im = Image.new("RGB", (400, 300), (255, 255, 255))
        ImageDraw.Draw(im).text((40, 130), text, fill=colour, font_size=48)
        images.append((f"text/{k}", im))
    im = Image.new("RGB", (400, 300), (255, 255, 255))
    ImageDraw.Draw(im).ellipse((100, 50, 300, 250), fill=(0, 120, 0))
    images.append(("circle/0", im))
    return images


def _bits(value: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(value, dtype=np.uint8))


def main() -> None:
    images = originals()
    hashes = {a: np.stack([_bits(hash_image(a, im).value) for _, im in images]) for a in ALGORITHMS}
    quality = np.array([hash_image("pdq", im).quality or 0 for _, im in images])
    group = np.array([name.split("/")[0] for name, _ in images])
    synthetic = np.isin(group, ["flat", "ramp", "text", "circle"])
    photos = ~synthetic
    print(
        f"# Hash distances ({int(photos.sum())} photo crops from {len(set(group[photos]))} "
        f"photos, {int(synthetic.sum())} low-detail synthetic images)\n"
    )
    edits = {**EDITS, **GEOMETRIC}
    edited: dict[str, dict[str, list[int]]] = {
        a: {label: [] for label in edits} for a in ALGORITHMS
    }
    for label, edit in edits.items():
        for index in np.flatnonzero(photos & (quality >= 50)):
            copy = edit(images[index][1])
            for algorithm in ALGORITHMS:
                value = _bits(hash_image(algorithm, copy).value)
                edited[algorithm][label].append(int((value != hashes[algorithm][index]).sum()))
    print("## Edited photo crop to its original (PDQ quality >= 50): p95 / max bits\n")
    print("| edit | " + " | ".join(ALGORITHMS) + " |")
    print("| --- |" + " ---: |" * len(ALGORITHMS))
    for label in edits:
        cells = []
        for algorithm in ALGORITHMS:
            values = edited[algorithm][label]
            cells.append(f"{np.percentile(values, 95):.0f} / {max(values)}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    mirrored = [
        min(_distance_bits(v, hashes["pdq"][i]) for v in pdq_dihedral(_mirror(im)))
        for i, (_, im) in enumerate(images)
        if photos[i] and quality[i] >= 50
    ]
    print(
        f"| mirror, PDQ with its dihedral hashes | | | {np.percentile(mirrored, 95):.0f} / "
        f"{max(mirrored)} |"
    )

    upper = np.triu(np.ones((len(images), len(images)), dtype=bool), 1)
    different = (group[:, None] != group[None, :]) & upper
    photo_pairs = different & photos[:, None] & photos[None, :]
    for label, mask in (
        ("photo crops of different photos", photo_pairs),
        ("any two different images, low-detail ones included", different),
    ):
        print(f"\n## Different images: {label} ({int(mask.sum())} pairs)\n")
        print("| algorithm | min | p0.1 | p1 | pairs at <= 4 | <= 6 | <= 8 | <= 10 | <= 12 |")
        print("| --- |" + " ---: |" * 9)
        for algorithm in ALGORITHMS:
            bits = hashes[algorithm].astype(np.int32)
            distance = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
            chosen = mask
            if algorithm == "pdq":
                chosen = mask & (quality[:, None] >= 50) & (quality[None, :] >= 50)
            values = distance[chosen]
            counts = [int((values <= d).sum()) for d in (4, 6, 8, 10, 12)]
            closest = np.argwhere((distance == values.min()) & chosen)[:3]
            names = ", ".join(f"{images[i][0]} ~ {images[j][0]}" for i, j in closest)
            print(
                f"| {algorithm} | {values.min()} ({names}) | {np.percentile(values, 0.1):.0f} "
                f"| {np.percentile(values, 1):.0f} | " + " | ".join(map(str, counts)) + " |"
            )
    thresholds(edited, hashes, photo_pairs)


def thresholds(
    edited: dict[str, dict[str, list[int]]], hashes: dict[str, np.ndarray], mask: np.ndarray
) -> None:
    """Per candidate distance: share of edited copies caught, false pairs, a 1M-list estimate."""
    print("\n## Candidate distances (photos)\n")
    print(
        "Caught: share of edited copies within the distance (JPEG, resize, noise, grey, "
        "brightness, WebP, PNG; watermark apart). False pairs: among the photo pairs above. "
        "False per 1M: expected different images within the distance in a list of a million, "
        "from a normal fit to the distances between different photos (real tails are heavier)."
        "\n"
    )
    print("| algorithm | distance | caught | watermark caught | false pairs | false per 1M |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    everyday = [k for k in EDITS if k not in ("watermark", "5% crop")]
    for algorithm in ("phash", "dhash"):
        bits = hashes[algorithm].astype(np.int32)
        values = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)[mask]
        mean, std = float(values.mean()), float(values.std())
        caught_from = [d for k in everyday for d in edited[algorithm][k]]
        for limit in (4, 6, 8, 10, 12):
            caught = np.mean(np.array(caught_from) <= limit)
            marked = np.mean(np.array(edited[algorithm]["watermark"]) <= limit)
            tail = 0.5 * math.erfc((mean - (limit + 0.5)) / (std * math.sqrt(2)))
            print(
                f"| {algorithm} | {limit} | {100 * caught:.1f}% | {100 * marked:.0f}% "
                f"| {int((values <= limit).sum())} | {tail * 1e6:.2g} |"
            )


def large(photo_names: list[str]) -> None:
    """Everyday edits of 12 MP camera JPEGs, hashed through safemedia's fast pipeline."""
    caps: dict[str, Any] = {"max_pixels": 100_000_000, "max_frames": 1}
    edits = {k: v for k, v in EDITS.items() if k != "png"}
    found: dict[str, list[int]] = {label: [] for label in edits}
    mirrored: list[int] = []
    for name in photo_names:
        body = photo(name, (4000, 3000))
        original = decode(body, **caps).frames[0]
        plain = hash_image("pdq", original)
        if (plain.quality or 0) < 50:
            continue
        full = decode(body, **caps, full_resolution=True).frames[0]
        for label, edit in edits.items():
            out = io.BytesIO()
            edit(full).save(out, "JPEG", quality=90)
            copy = decode(out.getvalue(), **caps).frames[0]
            found[label].append(
                (
                    int.from_bytes(hash_image("pdq", copy).value, "big")
                    ^ int.from_bytes(plain.value, "big")
                ).bit_count()
            )
        out = io.BytesIO()
        _mirror(full).save(out, "JPEG", quality=90)
        variants = pdq_dihedral(decode(out.getvalue(), **caps).frames[0])
        mirrored.append(
            min(
                (int.from_bytes(v, "big") ^ int.from_bytes(plain.value, "big")).bit_count()
                for v in variants
            )
        )
    print(f"\n## PDQ of edited 12 MP photos ({len(mirrored)} photos, fast pipeline), bits\n")
    print("| edit | p50 | max |")
    print("| --- | ---: | ---: |")
    for label, values in {**found, "mirror (dihedral hashes)": mirrored}.items():
        print(f"| {label} | {np.percentile(values, 50):.0f} | {max(values)} |")


def _distance_bits(value: bytes, bits: np.ndarray) -> int:
    return int((_bits(value) != bits).sum())


if __name__ == "__main__":
    if "--large" in sys.argv[1:]:
        large(list(sources()))
    else:
        main()
