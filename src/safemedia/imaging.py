"""Safe decoding: bytes in, RGB frames out, or a :class:`DecodeError` with a reason.

One pinned pipeline, because each step moves a perceptual hash by tens to hundreds of bits:

1. format allow-list (JPEG, PNG/APNG, GIF, WebP, BMP, TIFF, ICO, and AVIF/HEIF where Pillow
   decodes them); anything else is ``unsupported_format``, garbage is ``undecodable``;
2. pixel and frame caps checked from the headers before any pixel is decoded; Pillow's own
   decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) is read, never changed, and is a cap too;
3. unless ``full_resolution``: large JPEGs decoded at 1/2, 1/4 or 1/8 scale with libjpeg's DCT
   scaling (``Image.draft``), other large frames averaged over blocks (``Image.reduce``), at the
   scale :func:`safemedia.pdq.faithful_scale` allows; such frames carry their
   :class:`~safemedia.hashing.Reduction` so that PDQ hashes them as the full-resolution image
   (within a few bits; see ``docs/matching.md`` and ``docs/performance.md``);
4. EXIF orientation applied; every mode converted to RGB (16-bit and float scaled, CMYK via
   Pillow's Adobe-aware decoder, palettes and alpha composited over white);
5. every frame of an animation or multi-page TIFF, up to ``max_frames``.

Nothing but :class:`DecodeError` ever leaves :func:`decode`.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFile, UnidentifiedImageError

from safemedia.hashing import REDUCTION, Reduction
from safemedia.pdq import faithful_scale, faithful_scales
from safemedia.verdict import Reason

__all__ = [
    "ALLOWED_FORMATS",
    "DecodeError",
    "DecodedImage",
    "decode",
    "to_rgb",
]

#: Formats safemedia decodes (Pillow format names). HEIF only exists when a plugin registers it.
ALLOWED_FORMATS: tuple[str, ...] = (
    "JPEG",
    "PNG",
    "GIF",
    "WEBP",
    "BMP",
    "TIFF",
    "ICO",
    "AVIF",
    "HEIF",
)

_WHITE = (255, 255, 255)
_ORIENTATION = 0x0112
_bomb_lock = threading.Lock()


class DecodeError(Exception):
    """The body cannot be inspected; ``reason`` says why, ``detail`` says what was seen."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """A decoded body: its format, its (display) size and its frames, each RGB.

    Unless decoded at full resolution, large frames are smaller than ``width`` x ``height``
    (reduced, possibly by a different factor per axis); such a frame carries its
    :class:`~safemedia.hashing.Reduction` in ``frame.info``, which PDQ uses.
    """

    format: str
    width: int
    height: int
    frames: tuple[Image.Image, ...]


def decode(
    body: bytes,
    *,
    max_pixels: int,
    max_frames: int,
    full_resolution: bool = False,
    max_total_pixels: int | None = None,
) -> DecodedImage:
    """Decode ``body`` into RGB frames, or raise :class:`DecodeError`.

    ``max_pixels`` caps each frame; ``max_frames`` caps the number of frames;
    ``max_total_pixels`` (default: ``max_pixels``) caps the pixels decoded for all frames
    together, each counted at the size of the canvas it is composited on (what decoding costs):
    beyond it, ``too_many_pixels``. GIF images that repeat the one before are not decoded again.
    ``full_resolution`` turns off reduced decoding: the python-threatexchange pipeline,
    bit-exact with published PDQ hashes, and several times slower on large images.
    """
    budget = max_pixels if max_total_pixels is None else max_total_pixels
    try:
        return _decode(bytes(body), max_pixels, max_frames, full_resolution, budget)
    except DecodeError:
        raise
    except MemoryError:
        raise DecodeError(Reason.TOO_MANY_PIXELS, "out of memory while decoding") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError(Reason.TOO_MANY_PIXELS, str(exc)) from None
    except EOFError as exc:
        raise DecodeError(Reason.TRUNCATED, str(exc) or "unexpected end of data") from None
    except Exception as exc:  # the boundary: no other exception may reach the host app
        cut = "truncated" in str(exc).lower() or _container_cut_short(body)
        raise DecodeError(Reason.TRUNCATED if cut else Reason.UNDECODABLE, _describe(exc)) from None


def _decode(
    body: bytes, max_pixels: int, max_frames: int, full_resolution: bool, budget: int
) -> DecodedImage:
    if not body:
        raise DecodeError(Reason.UNDECODABLE, "empty body")
    cap = _pixel_cap(max_pixels)
    im = _open(body)
    fmt = im.format or "unknown"
    width, height = im.size
    _check_pixels(width, height, cap)

    sources: list[int] | None = None  # GIF: for each frame, the frame decoded for it
    if fmt == "GIF":
        im, sources = _plan_gif(im, body, max_frames, cap, budget)
    else:
        declared = _declared_frames(im, fmt, max_frames)
        if declared > max_frames:
            raise DecodeError(
                Reason.TOO_MANY_FRAMES, f"{fmt} has more than {max_frames} frames ({declared}+)"
            )

    if fmt == "PNG":  # before the EXIF look-up, which decodes a PNG to find a late eXIf chunk
        if b"acTL" not in body:
            _load_png(im, body)
        elif not png_streams_complete(body):
            raise DecodeError(Reason.TRUNCATED, "APNG image data ends before a frame's last row")
    orientation = _orientation(im)
    drafted = 1
    if not full_resolution and fmt in ("JPEG", "MPO"):
        drafted = _draft(im)

    frames: list[Image.Image] = []
    total = 0  # pixels of the (reduced) frames kept
    spent = 0  # pixels decoded
    for index in range(max_frames + 1):
        if index:
            if fmt == "MPO":
                break  # further MPO images are previews/stereo pairs that browsers never show
            if frames[-1] is im:  # seeking reuses the image: keep the previous frame's pixels
                frames[-1] = im.copy()
                frames[-1].info = dict(im.info)
            try:
                im.seek(index)
            except (EOFError, ValueError):  # no more frames ("cannot seek" when single-frame)
                break
            if index == max_frames:
                raise DecodeError(
                    Reason.TOO_MANY_FRAMES, f"{fmt} has more than {max_frames} frames"
                )
            _check_pixels(*im.size, cap)
        if fmt == "TIFF":
            _check_tiff_strips(im)
        spent += im.size[0] * im.size[1]
        if spent > budget:
            raise DecodeError(
                Reason.TOO_MANY_PIXELS,
                f"{fmt} frames decode to more than {budget} pixels in total",
            )
        _load(im)
        if index == 0 and fmt == "JPEG" and _jpeg_filled_in(im, body, drafted > 1):
            raise DecodeError(Reason.TRUNCATED, "JPEG data ends before the image does")
        if full_resolution or drafted > 1:
            frame = to_rgb(im)
            if orientation:
                frame = _transpose(frame, orientation)
            if drafted > 1:
                frame.info[REDUCTION] = _reduced((width, height), (drafted, drafted), orientation)
        else:
            frame = _flatten_reduced(im, _block_scales(im.size, total, max_pixels, max_frames))
            if orientation:
                frame = _transpose(frame, orientation)
                if REDUCTION in frame.info:
                    reduction = frame.info[REDUCTION]
                    frame.info[REDUCTION] = _reduced(im.size, reduction.scales, orientation)
            total += frame.width * frame.height
            if frame.mode != "RGB":
                info = frame.info
                frame = frame.convert("RGB")
                frame.info = info
        frames.append(frame)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if sources is not None:
        frames = [frames[n] for n in sources if n < len(frames)] + frames[sources[-1] + 1 :]
    return DecodedImage(format=fmt, width=width, height=height, frames=tuple(frames))


def _container_cut_short(body: bytes) -> bool:
    """Whether a container that declares its length (RIFF: WebP) holds fewer bytes than that."""
    if body[:4] == b"RIFF" and len(body) >= 8:
        return bool(struct.unpack_from("<I", body, 4)[0] + 8 > len(body))
    return False


def _pixel_cap(max_pixels: int) -> int:
    """Our cap, or Pillow's decompression-bomb limit when that is lower (read, never changed)."""
    pillow = Image.MAX_IMAGE_PIXELS
    return min(max_pixels, pillow) if pillow else max_pixels


def _check_pixels(width: int, height: int, cap: int) -> None:
    if width <= 0 or height <= 0:
        raise DecodeError(Reason.UNDECODABLE, f"image has no pixels ({width}x{height})")
    if width * height > cap:
        raise DecodeError(Reason.TOO_MANY_PIXELS, f"{width}x{height} is more than {cap} pixels")


@contextmanager
def _bomb_warning_is_error() -> Iterator[None]:
    """Pillow warns about decompression bombs while parsing headers: make that an error.

    ``warnings.catch_warnings`` swaps process-wide state, so only one thread at a time may hold it,
    and only for the header parse (microseconds). The host's filters are restored afterwards.
    """
    with _bomb_lock, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _open(body: bytes) -> ImageFile.ImageFile:
    try:
        with _bomb_warning_is_error():
            return Image.open(io.BytesIO(body), formats=_allowed_formats())
    except UnidentifiedImageError:
        pass
    prefix = body[:16]
    if _accepted_by(prefix, _allowed_formats()):
        # The magic is right but the header does not parse: cut short, or corrupt.
        if len(body) < 1024:
            raise DecodeError(Reason.TRUNCATED, f"header cut short ({len(body)} bytes)") from None
        raise DecodeError(Reason.UNDECODABLE, "image header does not parse") from None
    other = _accepted_by(prefix, tuple(Image.OPEN))
    if other:
        raise DecodeError(Reason.UNSUPPORTED_FORMAT, f"{other} images are not decoded") from None
    raise DecodeError(Reason.UNDECODABLE, f"not an image (starts with {prefix[:8].hex()})")


def _allowed_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in ALLOWED_FORMATS if f in Image.OPEN)


def _accepted_by(prefix: bytes, formats: tuple[str, ...]) -> str | None:
    """The first of ``formats`` whose magic-number check accepts ``prefix`` (no parsing)."""
    Image.init()
    for name in formats:
        entry = Image.OPEN.get(name)
        if entry is None or entry[1] is None:
            continue
        try:
            if entry[1](prefix) is True:
                return name
        except Exception:  # a plugin's magic check choking on odd bytes means "not mine"
            continue
    return None


def _declared_frames(im: ImageFile.ImageFile, fmt: str, max_frames: int) -> int:
    """Frames the headers declare, counted without decoding pixels (GIF: :func:`_plan_gif`)."""
    if fmt in ("PNG", "WEBP", "AVIF", "HEIF"):
        return int(getattr(im, "n_frames", 1))
    if fmt == "TIFF":  # walk the page directories only as far as the cap, decoding nothing
        try:
            im.seek(max_frames)
        except (EOFError, ValueError):
            im.seek(0)
            return 1  # at most max_frames pages; counted again while decoding them
        return max_frames + 1
    return 1  # MPO, ICO, BMP and JPEG give one frame


def _plan_gif(
    im: ImageFile.ImageFile, body: bytes, max_frames: int, cap: int, budget: int
) -> tuple[ImageFile.ImageFile, list[int]]:
    """Check a GIF's frames and pixels from its blocks; leave out images that repeat the one
    before (reopening the GIF without them). Returns the image to decode and, for each frame,
    the number of the decoded frame that shows it."""
    walk = _gif_walk(body, max_frames)
    _check_pixels(walk.width, walk.height, cap)
    count = max(len(walk.images), 1)
    if count > max_frames:
        raise DecodeError(Reason.TOO_MANY_FRAMES, f"GIF has more than {max_frames} frames")
    repeats = _gif_repeats(body, walk.images) if walk.complete else [False] * len(walk.images)
    drawn = max(1, count - sum(repeats))
    if drawn * walk.width * walk.height > budget:
        raise DecodeError(
            Reason.TOO_MANY_PIXELS,
            f"GIF frames decode to more than {budget} pixels in total "
            f"({drawn} frames of {walk.width}x{walk.height})",
        )
    sources, decoded = [], -1
    for repeat in repeats or [False]:
        decoded += not repeat
        sources.append(decoded)
    if any(repeats):
        im = _open(_gif_without(body, walk.images, repeats))
    return im, sources


@dataclass(frozen=True, slots=True)
class _GifImage:
    """Where one GIF image sits in the body, and how it is drawn."""

    start: int  # just past the previous image's data: this image's extensions start here
    image: int  # its image descriptor (0x2C)
    end: int  # just past its image data
    control: bytes  # its graphic control's flags and transparent index (b"" without one)


@dataclass(frozen=True, slots=True)
class _GifWalk:
    images: list[_GifImage]
    width: int  # the extent every image covers (Pillow grows the canvas to it)
    height: int
    complete: bool  # every image's data is there (it may still hold a bad LZW code)


def _gif_walk(body: bytes, limit: int) -> _GifWalk:
    """Find a GIF's images from its blocks, stopping past ``limit``; nothing is decoded."""
    if len(body) < 13:
        raise DecodeError(Reason.TRUNCATED, "GIF header cut short")
    width, height = struct.unpack_from("<HH", body, 6)
    flags = body[10]
    pos = 13
    if flags & 0x80:
        pos += 3 << ((flags & 7) + 1)
    end = len(body)
    images: list[_GifImage] = []
    start, control = pos, b""
    while pos < end and len(images) <= limit:
        tag = body[pos]
        pos += 1
        if tag == 0x3B:  # trailer
            break
        if tag == 0x21:  # extension: label, then sub-blocks
            if body[pos : pos + 2] == b"\xf9\x04" and pos + 6 <= end:  # graphic control
                control = bytes((body[pos + 2], body[pos + 5]))
            pos = _skip_sub_blocks(body, pos + 1)
        elif tag == 0x2C:  # image descriptor
            if pos + 9 > end:
                pos = end + 1
                break
            descriptor = pos - 1
            x, y, w, h, local = struct.unpack_from("<HHHHB", body, pos)
            width, height = max(width, x + w), max(height, y + h)
            data = pos + 9 + ((3 << ((local & 7) + 1)) if local & 0x80 else 0)
            pos = _skip_sub_blocks(body, data + 1)  # after the LZW minimum code size
            images.append(_GifImage(start, descriptor, pos, control))
            start, control = pos, b""
        # any other byte is skipped, as Pillow does
    return _GifWalk(images, width, height, complete=pos <= end)


def gif_frames(body: bytes, *, limit: int) -> tuple[int, int, int]:
    """Count a GIF's images (stopping past ``limit``) and the extent they cover, from the blocks.

    Returns ``(frames, width, height)``; the extent includes frames that overflow the logical
    screen (Pillow grows the canvas for those).
    """
    walk = _gif_walk(body, limit)
    return max(len(walk.images), 1), walk.width, walk.height


def _skip_sub_blocks(body: bytes, pos: int) -> int:
    """Just past the sub-blocks starting at ``pos``; past the end of ``body`` if it cuts them."""
    end = len(body)
    while pos < end:
        size = body[pos]
        pos += 1 + size
        if size == 0:
            return pos
    return max(pos, end + 1)


def _gif_repeats(body: bytes, images: list[_GifImage]) -> list[bool]:
    """For each image, whether it draws exactly what the canvas already shows.

    That is so when its bytes (descriptor, palette, data) and its drawing flags (disposal,
    transparency) are those of the image before, and that one left the canvas in place (disposal
    0 or 1, remembered across images as Pillow does): drawing the same pixels at the same place
    twice changes nothing. Only the delay may differ.
    """
    view = memoryview(body)
    repeats: list[bool] = []
    disposal = 0
    previous: _GifImage | None = None
    for image in images:
        repeats.append(
            previous is not None
            and disposal in (0, 1)
            and image.control == previous.control
            and view[image.image : image.end] == view[previous.image : previous.end]
        )
        if image.control and (image.control[0] >> 2) & 7:
            disposal = (image.control[0] >> 2) & 7
        previous = image
    return repeats


def _gif_without(body: bytes, images: list[_GifImage], drop: list[bool]) -> bytes:
    """The GIF with the ``drop`` images (and their extensions) left out."""
    kept = [
        body[image.start : image.end] for image, out in zip(images, drop, strict=True) if not out
    ]
    return body[: images[0].start] + b"".join(kept) + b";"


# --- PNG: a zlib stream that ends before the last row --------------------------------------
#
# Pillow's PNG decoder stops at the end of the zlib stream and keeps the rows it never wrote
# (zeros), without an error: a PNG whose image data ends early would be hashed as a complete
# picture. A still PNG is decoded into an image whose last written pixels hold a pattern; if the
# pattern survives, the data did not reach them (or happens to equal it: then the stream itself
# is measured). An APNG's streams are measured before decoding (one extra inflate of each).

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: first column, first row, column step, row step.
ADAM7_PASSES: tuple[tuple[int, int, int, int], ...] = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def png_data_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> int:
    """Bytes of filtered rows (a filter byte each) that a PNG image of this size inflates to."""
    total = 0
    for x0, y0, dx, dy in ADAM7_PASSES if interlaced else ((0, 0, 1, 1),):
        columns = max(0, -(-(width - x0) // dx))
        rows = max(0, -(-(height - y0) // dy))
        if columns and rows:
            total += rows * (1 + (columns * bits_per_pixel + 7) // 8)
    return total


def png_streams_complete(body: bytes) -> bool:
    """Whether every image stream (IDAT, and each APNG frame's fdAT) inflates to all its rows.

    Walks the chunks (CRCs are Pillow's business); a stream that zlib cannot inflate counts as
    complete here, because Pillow reports it as broken anyway.
    """
    if not body.startswith(_PNG_SIGNATURE):
        return True
    view = memoryview(body)
    pos, previous = len(_PNG_SIGNATURE), b""
    bits, interlaced, size = 0, False, (0, 0)
    frame_size: tuple[int, int] | None = None
    streams: list[tuple[int, list[memoryview]]] = []
    while pos + 8 <= len(body):
        length, kind = struct.unpack_from(">I4s", body, pos)
        data = view[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR" and len(data) >= 13:
            width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data)
            bits, interlaced, size = (
                depth * _PNG_CHANNELS.get(colour, 4),
                interlace == 1,
                (
                    width,
                    height,
                ),
            )
        elif kind == b"fcTL" and len(data) >= 12:
            frame_size = struct.unpack_from(">II", data, 4)
        elif kind in (b"IDAT", b"fdAT"):
            if kind != previous:
                dims = size if kind == b"IDAT" else frame_size
                if dims is None:
                    previous = kind
                    continue
                streams.append((png_data_size(*dims, bits, interlaced), []))
            streams[-1][1].append(data if kind == b"IDAT" else data[4:])
        elif kind == b"IEND":
            break
        previous = kind
    return all(_inflates_to(chunks, need) for need, chunks in streams if bits)


def _inflates_to(chunks: list[memoryview], need: int) -> bool:
    """Whether these pieces of one zlib stream inflate to at least ``need`` bytes (output
    discarded as it comes, a megabyte at a time)."""
    inflater = zlib.decompressobj()
    got = 0
    try:
        for chunk in chunks:
            data: bytes | memoryview = chunk
            while data and not inflater.eof:
                got += len(inflater.decompress(data, 1 << 20))
                if got >= need:
                    return True
                data = inflater.unconsumed_tail
            if inflater.eof:
                break
        got += len(inflater.flush())
    except zlib.error:
        return True
    return got >= need


_PNG_MARKER_WIDTH = 4096  # pixels of the last row that hold the pattern


def _load_png(im: ImageFile.ImageFile, body: bytes) -> None:
    """Load a still PNG, raising ``truncated`` when its image data ends before the last row."""
    width, height = im.size
    interlaced = bool(im.info.get("interlace"))
    columns = slice(None)
    if not interlaced or (height == 1 and width == 1):
        row = height - 1
    elif height >= 2:
        row = height - 1 if (height - 1) % 2 else height - 2  # Adam7's last pass: odd rows
    else:
        row, columns = 0, slice(1, None, 2)  # one interlaced row: the last pass fills odd columns
    # The decoder writes a row (or an Adam7 pass's row) in one go: its last pixels are enough.
    left = max(0, width - _PNG_MARKER_WIDTH) & ~1  # even, so odd columns stay odd
    box = (left, row, width, row + 1)
    count = len(Image.new(im.mode, (width - left, 1)).tobytes())
    pattern = ((np.arange(count, dtype=np.uint32) * 151 + 89) % 251).astype(np.uint8)
    marker = Image.frombytes(im.mode, (width - left, 1), pattern.tobytes())
    canvas = Image.new(im.mode, im.size)
    canvas.paste(marker, box)
    im.im = canvas.im  # Pillow decodes into this image instead of a fresh one
    _load(im)
    last = np.asarray(im.crop(box))[:, columns]
    if np.array_equal(last, np.asarray(marker)[:, columns]) and not png_streams_complete(body):
        raise DecodeError(Reason.TRUNCATED, "PNG image data ends before its last row")


#: Largest TIFF strip or tile decoded through libtiff, which holds one whole (uncompressed)
#: besides the frame itself: a single-strip 88 MP RGB TIFF would need 265 MB more.
MAX_TIFF_STRIP_BYTES = 64 << 20


def _check_tiff_strips(im: Image.Image) -> None:
    """Refuse a compressed TIFF page whose strips (or tiles) are too big to decode at once."""
    if not any(tile[0] == "libtiff" for tile in getattr(im, "tile", ())):
        return  # uncompressed: Pillow reads the rows as they come
    tags = getattr(im, "tag_v2", {})
    width, height = im.size
    bits = tags.get(258, 8)
    per_pixel = sum(bits) if isinstance(bits, tuple) else int(bits) * int(tags.get(277, 1))
    if 322 in tags and 323 in tags:  # tiles
        strip = int(tags[322]) * int(tags[323]) * per_pixel // 8
    else:
        strip = min(int(tags.get(278, height)), height) * -(-width * per_pixel // 8)
    if strip > MAX_TIFF_STRIP_BYTES:
        raise DecodeError(
            Reason.TOO_MANY_PIXELS,
            f"TIFF strip of {strip >> 20} MB would be decoded at once "
            f"(more than {MAX_TIFF_STRIP_BYTES >> 20} MB)",
        )


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not stop the scan: treat as unrotated
        return 0
    return value if isinstance(value, int) and 2 <= value <= 8 else 0


def _transpose(frame: Image.Image, orientation: int) -> Image.Image:
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }[orientation]
    return frame.transpose(method)


def _draft(im: ImageFile.ImageFile) -> int:
    """Ask libjpeg for DCT-scaled decoding at :func:`faithful_scale`; returns the scale used."""
    width, height = im.size
    scale = faithful_scale(width, height)
    if scale == 1:
        return 1
    result = im.draft(im.mode, (width // scale, height // scale))
    if result is None:
        return 1
    box = result[1]
    return max(1, round(width / box[2]))


# For each EXIF orientation: whether the displayed x / y axis runs against the stored one.
_REVERSED_AXES = {
    2: (True, False),
    3: (True, True),
    4: (False, True),
    5: (False, False),
    6: (True, False),
    7: (True, True),
    8: (False, True),
}


def _reduced(stored: tuple[int, int], scales: tuple[int, int], orientation: int) -> Reduction:
    """The :class:`Reduction` of a frame reduced by ``scales`` (x, y) in its stored orientation
    (blocks aligned to its top-left corner), after its EXIF orientation was applied."""
    width, height = stored
    scale_x, scale_y = scales
    if orientation in (5, 6, 7, 8):
        width, height, scale_x, scale_y = height, width, scale_y, scale_x
    reversed_x, reversed_y = _REVERSED_AXES.get(orientation, (False, False))
    return Reduction((width, height), scale_x, reversed_x, reversed_y, scale_y=scale_y)


def _block_scales(
    size: tuple[int, int], total: int, max_pixels: int, max_frames: int
) -> tuple[int, int]:
    """Blocks to average a frame over: as far as PDQ stays faithful, or further to bound the
    memory that the frames kept so far (``total`` pixels) take."""
    width, height = size
    scale_x, scale_y = faithful_scales(width, height)
    if total + width * height > max_pixels:
        per_frame = max(1, max_pixels // max_frames)
        more = max(1, math.ceil(math.sqrt(width * height / (per_frame * scale_x * scale_y))))
        scale_x, scale_y = scale_x * more, scale_y * more
    return scale_x, scale_y


def _flatten_reduced(im: Image.Image, scales: tuple[int, int]) -> Image.Image:
    """:func:`_flatten` (greyscale kept) and averaged over ``scales`` blocks, tagged with its
    :class:`Reduction`. Modes that need converting are converted a band of rows at a time, so
    that only the decoded frame is ever held at full size."""
    scale_x, scale_y = scales
    width, height = im.size
    if scale_x == scale_y == 1:
        return _flatten(im, keep_grey=True)
    if im.mode == "RGB" or (im.mode == "L" and "transparency" not in im.info):
        reduced = im.reduce(scales)
    else:
        grey = _grey_scaling(im) if im.mode in _GREY[2:] else None
        step = scale_y * max(1, (1 << 20) // max(1, width * scale_y))
        parts = []
        for top in range(0, height, step):
            band = im.crop((0, top, width, min(height, top + step)))
            parts.append((top // scale_y, _flatten(band, keep_grey=True, grey=grey).reduce(scales)))
        reduced = Image.new(parts[0][1].mode, (-(-width // scale_x), -(-height // scale_y)))
        for row, part in parts:
            reduced.paste(part, (0, row))
    reduced.info[REDUCTION] = Reduction(im.size, scale_x, scale_y=scale_y)
    return reduced


def _load(im: Image.Image) -> None:
    try:
        im.load()
    except OSError as exc:
        text = str(exc)
        if "truncated" in text or "premature end" in text.lower():
            raise DecodeError(Reason.TRUNCATED, text) from None
        raise
    # A host that set ImageFile.LOAD_TRUNCATED_IMAGES gets cut-off files decoded in part, grey
    # below the cut: Pillow's JPEG reader marks those (it adds the missing end marker).
    if getattr(im, "_ended", False) and ImageFile.LOAD_TRUNCATED_IMAGES:
        raise DecodeError(Reason.TRUNCATED, "JPEG data ends before the image does")


# Bytes inserted where a JPEG's last scan ends, to see whether libjpeg reads them (no 0xff).
_JPEG_PADDING = bytes((i * 97 + 13) % 255 for i in range(64))


def _jpeg_filled_in(im: ImageFile.ImageFile, body: bytes, drafted: bool) -> bool:
    """Whether libjpeg ran out of scan data and filled the rest of the image in grey.

    A JPEG cut short with an end marker added (as some tools and proxies do) decodes without an
    error: libjpeg paints the missing blocks flat mid-grey. When the bottom row is exactly that
    grey, the JPEG is decoded once more with bytes inserted where its last scan ends: a complete
    JPEG ignores them (its blocks were all read), a cut one decodes them into the missing blocks.
    """
    if im.mode not in ("L", "RGB", "CMYK"):
        return False
    width, height = im.size
    extrema = im.crop((0, height - 1, width, height)).getextrema()
    bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
    if not all(low == high and low in (127, 128) for low, high in bands):
        return False
    end = _jpeg_scans_end(body)
    if end is None:
        return False
    try:
        with _bomb_warning_is_error():
            again = Image.open(io.BytesIO(body[:end] + _JPEG_PADDING + body[end:]))
        if drafted:
            again.draft(im.mode, im.size)
        again.load()
    except Exception:  # the padded copy does not decode: no evidence either way
        return False
    return again.size == im.size and again.tobytes() != im.tobytes()


def _jpeg_scans_end(body: bytes) -> int | None:
    """Where a JPEG's last scan ends (its end marker), walking the segments; None if unclear."""
    pos, size, end = 2, len(body), None
    while pos + 2 <= size:
        if body[pos] != 0xFF:
            return None
        marker = body[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            return end
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        if pos + 4 > size:
            return None
        pos += 2 + struct.unpack_from(">H", body, pos + 2)[0]
        if marker != 0xDA:
            continue
        while True:  # entropy-coded data: up to a marker other than a stuffed 0 or a restart
            pos = body.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= size:
                return None
            following = body[pos + 1]
            if following == 0xFF:
                pos += 1
            elif following == 0x00 or 0xD0 <= following <= 0xD7:
                pos += 2
            else:
                end = pos
                break
    return None


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha over white, high bit depths scaled to 8 bits.

    An image that is RGB already is returned as it is (not copied).
    """
    return _flatten(im, keep_grey=False)


_GREY = ("1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _flatten(
    im: Image.Image, *, keep_grey: bool, grey: tuple[float, float] | None = None
) -> Image.Image:
    """RGB, or with ``keep_grey`` "L" for greyscale modes (so they can be reduced first).

    ``grey``: the (scale, offset) for 32-bit and float greyscale, when ``im`` is part of a frame
    whose range was measured as a whole.
    """
    mode = im.mode
    if mode == "RGB" or (keep_grey and mode == "L" and "transparency" not in im.info):
        return im
    if mode in _GREY[2:]:
        eight = _to_grey(im, *(grey or _grey_scaling(im)))
        return eight if keep_grey else eight.convert("RGB")
    if mode == "La":
        im = im.convert("LA")
        mode = "LA"
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in im.info
    if has_alpha:
        rgba = im if mode == "RGBA" else im.convert("RGBA")
        out = Image.new("RGB", rgba.size, _WHITE)
        out.paste(rgba, mask=rgba)  # an RGBA mask is its alpha band
        return out
    if keep_grey and mode == "1":
        return im.convert("L")
    return im.convert("RGB")


# round(v * 255 / 65535) for every 16-bit v (no ties: 65535 is odd and 255 divides it).
_SIXTEEN_TO_EIGHT = ((np.arange(65536, dtype=np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _grey_slices(im: Image.Image) -> Iterator[tuple[int, NDArray[Any]]]:
    """A greyscale image's rows as arrays, about a million pixels at a time, each copied out of
    Pillow's image on its own (a frame at the pixel cap is never copied whole)."""
    width, height = im.size
    step = max(1, (1 << 20) // max(1, width))
    for top in range(0, height, step):
        yield top, np.asarray(im.crop((0, top, width, min(height, top + step))))


def _grey_scaling(im: Image.Image) -> tuple[float, float]:
    """(scale, offset) taking 16-bit, 32-bit and float greyscale to 8 bits by their nominal
    range, not by clipping: 16-bit modes by 255/65535; "I" and "F" by the range of values found
    (8-bit, 16-bit, float in [0, 1], or else stretched from lowest to highest)."""
    if im.mode.startswith("I;16"):
        return 255.0 / 65535.0, 0.0
    floating = im.mode == "F"
    lows, highs = [], []
    for _, part in _grey_slices(im):
        if floating:
            part = part[np.isfinite(part)]
        if part.size:
            lows.append(float(part.min()))
            highs.append(float(part.max()))
    low, high = (min(lows), max(highs)) if lows else (0.0, 0.0)
    if floating and low >= 0.0 and high <= 1.0:
        return 255.0, 0.0  # float in [0, 1]
    if low >= 0.0 and high <= 255.0:
        return 1.0, 0.0  # already 8-bit values
    if low >= 0.0 and high <= 65535.0:
        return 255.0 / 65535.0, 0.0  # 16-bit
    return 255.0 / (high - low or 1.0), -low  # anything else: stretch


def _to_grey(im: Image.Image, scale: float, offset: float) -> Image.Image:
    """``im`` (16-bit, 32-bit or float greyscale) as 8-bit "L": ``(value + offset) * scale``."""
    out = np.empty((im.height, im.width), dtype=np.uint8)
    floating = im.mode == "F"
    table = not floating and offset == 0.0 and scale == 255.0 / 65535.0
    for top, part in _grey_slices(im):
        rows = slice(top, top + part.shape[0])
        if table:  # 16-bit values: one table look-up
            out[rows] = _SIXTEEN_TO_EIGHT[part]
            continue
        values = part.astype(np.float32)
        if floating:
            values = np.nan_to_num(values, nan=0.0, posinf=255.0 / scale - offset, neginf=-offset)
        out[rows] = np.clip(np.rint((values + offset) * scale), 0, 255)
    return Image.fromarray(out, "L")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
