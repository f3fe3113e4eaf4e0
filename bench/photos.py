"""Public sample photos for the benchmarks, upscaled to camera sizes and saved as JPEGs.

Sources are photos that PyPI packages ship (scikit-image's ``skimage/data``, scikit-learn's
sample images, matplotlib's sample data) plus Meta's PDQ bridge photo from the test fixtures:
install them with ``pip install -e '.[bench]'``. Each is cropped to the target aspect, upscaled
with bicubic resampling, given a little sensor-like grain (so that a 12 MP JPEG at quality 92 is
about 3 MB, as a phone photo is) and cached in the system temp directory.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(tempfile.gettempdir()) / "safemedia-bench-photos-v1"

SKIMAGE = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)


def _skimage_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def _sklearn_dir() -> Path:
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "images"


def _matplotlib_file(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / name


def sources() -> dict[str, Callable[[], Image.Image]]:
    """Name -> loader of each distinct source photo (RGB)."""
    found: dict[str, Path] = {}
    with contextlib.suppress(ImportError):
        for name in SKIMAGE:
            found[Path(name).stem] = _skimage_dir() / name
    with contextlib.suppress(ImportError):
        for name in ("china.jpg", "flower.jpg"):
            found[Path(name).stem] = _sklearn_dir() / name
    with contextlib.suppress(ImportError):
        found["grace_hopper"] = _matplotlib_file("grace_hopper.jpg")
    found["bridge"] = (
        ROOT / "tests" / "fixtures" / "pdq" / "images" / "bridge-mods" / "aaa-orig.jpg"
    )

    def loader(path: Path) -> Callable[[], Image.Image]:
        def load() -> Image.Image:
            with Image.open(path) as im:
                return im.convert("RGB")

        return load

    return {name: loader(path) for name, path in sorted(found.items()) if path.exists()}


def camera_jpeg(
    source: Image.Image,
    size: tuple[int, int],
    *,
    grain: float = 4.0,
    quality: int = 92,
    seed: int = 0,
) -> bytes:
    """``source`` cropped to the aspect of ``size``, upscaled to it, grained, as a JPEG."""
    width, height = size
    scale = max(width / source.width, height / source.height)
    big = source.resize(
        (max(width, round(source.width * scale)), max(height, round(source.height * scale))),
        Image.Resampling.BICUBIC,
    )
    left, top = (big.width - width) // 2, (big.height - height) // 2
    big = big.crop((left, top, left + width, top + height))
    if grain:
        rng = np.random.default_rng(seed)
        pixels = np.asarray(big, dtype=np.float32)
        pixels = pixels + rng.normal(0.0, grain, (height, width, 1)).astype(np.float32)
        big = Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    big.save(out, "JPEG", quality=quality)
    return out.getvalue()


def photo(name: str, size: tuple[int, int], *, grain: float = 4.0, quality: int = 92) -> bytes:
    """The cached JPEG of source ``name`` at ``size``."""
    path = CACHE / f"{name}-{size[0]}x{size[1]}-g{grain:g}-q{quality}.jpg"
    if path.exists():
        return path.read_bytes()
    body = camera_jpeg(sources()[name](), size, grain=grain, quality=quality)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(body)
    tmp.replace(path)
    return body


def photos(
    sizes: tuple[tuple[int, int], ...], *, grain: float = 4.0
) -> Iterator[tuple[str, tuple[int, int], bytes]]:
    """Every source at every size: ``(name, size, jpeg)``."""
    for name in sources():
        for size in sizes:
            yield name, size, photo(name, size, grain=grain)
