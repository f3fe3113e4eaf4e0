"""Safe decoding: hostile and odd inputs give a defined result, quickly, and never an exception."""

from __future__ import annotations

import functools
import io
import struct
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageFile

from safemedia.imaging import ADAM7_PASSES, DecodedImage, DecodeError, decode, gif_frames, to_rgb
from safemedia.verdict import Reason
from tests.synthetic import gif_sequence, picture

CAPS: dict[str, Any] = {"max_pixels": 100_000_000, "max_frames": 64}


def encode(im: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tiff_with_one_strip(width: int, height: int, *, strip_bytes: int) -> bytes:
    """A little-endian greyscale TIFF whose single strip claims the whole image."""
    entries = [
        (256, 4, 1, width),  # ImageWidth
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: min-is-black
        (273, 4, 1, 8 + 2 + 12 * 9 + 4),  # StripOffsets: right after the IFD
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, width * height),  # StripByteCounts: claims everything
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0\0\0\0" + bytes(strip_bytes)


def reason_for(body: bytes, **caps: int) -> Reason:
    with pytest.raises(DecodeError) as info:
        decoded(body, **caps)
    return info.value.reason


def decoded(body: bytes, **kwargs: Any) -> DecodedImage:
    return decode(body, **{**CAPS, **kwargs})


def test_zero_bytes_are_undecodable() -> None:
    assert reason_for(b"") is Reason.UNDECODABLE


@pytest.mark.parametrize(
    "body",
    [b"hello, world" * 20, b"\x89PNX\r\n\x1a\n" + b"\0" * 64, b"GIF87b" + b"\0" * 64, bytes(1000)],
)
def test_garbage_and_wrong_magic_are_undecodable(body: bytes) -> None:
    assert reason_for(body) is Reason.UNDECODABLE


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF"])
def test_a_file_cut_in_half_is_truncated(fmt: str) -> None:
    body = encode(noise(300, 200), fmt)
    assert reason_for(body[: len(body) // 2]) is Reason.TRUNCATED


def test_truncated_jpeg_stays_truncated_when_the_host_loads_truncated_images(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    body = encode(noise(300, 200), "JPEG")
    assert reason_for(body[: len(body) // 2]) is Reason.TRUNCATED
    assert decoded(body).frames[0].size == (300, 200)


@pytest.mark.parametrize("length", [8, 40, 100])
def test_a_header_cut_short_is_truncated(length: int) -> None:
    body = encode(noise(64, 64), "PNG")
    assert reason_for(body[:length]) is Reason.TRUNCATED
    jpeg = encode(noise(64, 64), "JPEG")
    assert reason_for(jpeg[:length]) is Reason.TRUNCATED


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("EPS", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n" + b"\n" * 64),
        ("PSD", b"8BPS\x00\x01" + bytes(64)),
        ("FITS", b"SIMPLE  =                    T" + b" " * 2850),
        ("JPEG2000", encode(Image.new("RGB", (8, 8)), "JPEG2000")),
        ("PPM", encode(Image.new("RGB", (8, 8)), "PPM")),
        ("QOI", encode(Image.new("RGB", (8, 8)), "QOI")),
    ],
)
def test_formats_outside_the_allow_list_are_unsupported(fmt: str, body: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decoded(body)
    assert info.value.reason is Reason.UNSUPPORTED_FORMAT
    assert fmt in info.value.detail


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "ICO", "AVIF"])
def test_allowed_formats_decode_to_rgb(fmt: str) -> None:
    image = decoded(encode(Image.new("RGB", (48, 32), (200, 40, 40)), fmt))
    assert image.format == fmt
    assert (image.width, image.height) == image.frames[0].size
    assert image.frames[0].mode == "RGB"
    red, green, blue = image.frames[0].getpixel((10, 10))  # type: ignore[misc]
    assert red > 150
    assert max(green, blue) < 90


def test_one_pixel_image_decodes() -> None:
    image = decoded(encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"))
    assert image.frames[0].getpixel((0, 0)) == (10, 20, 30)


def test_png_header_claiming_60000_squared_is_refused_before_decoding() -> None:
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    body = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )
    assert reason_for(body) is Reason.TOO_MANY_PIXELS


def test_pixel_cap_is_checked_from_the_header() -> None:
    body = encode(Image.new("RGB", (200, 100)), "PNG")
    assert reason_for(body, max_pixels=19_999) is Reason.TOO_MANY_PIXELS
    assert decoded(body, max_pixels=20_000).width == 200


def test_pillow_bomb_limit_counts_without_being_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    body = encode(Image.new("RGB", (150, 100)), "PNG")  # over Pillow's limit, under 2x
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # even when the host only logs the warning
        assert reason_for(body) is Reason.TOO_MANY_PIXELS
    assert Image.MAX_IMAGE_PIXELS == 10_000


def test_decoding_leaves_the_hosts_warning_filters_alone() -> None:
    before = list(warnings.filters)
    decoded(encode(noise(20, 20), "PNG"))
    assert list(warnings.filters) == before


def test_gif_with_thousands_of_frames_is_refused_without_decoding_them() -> None:
    frames = [Image.new("P", (2, 2), i % 256) for i in range(3000)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], optimize=False)
    body = out.getvalue()
    assert gif_frames(body, limit=64)[0] == 65  # counting stops just past the cap
    assert reason_for(body) is Reason.TOO_MANY_FRAMES


def test_tiff_with_thousands_of_pages_is_refused_without_decoding_them() -> None:
    pages = [Image.new("L", (4, 4), i % 256) for i in range(2000)]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:])
    with pytest.raises(DecodeError) as info:
        decoded(out.getvalue())
    assert info.value.reason is Reason.TOO_MANY_FRAMES
    assert "65+" in info.value.detail  # counted only as far as the cap


def test_gif_frame_outside_the_canvas_counts_towards_the_pixel_cap() -> None:
    body = bytearray(encode(Image.new("P", (4, 4)), "GIF"))
    descriptor = body.index(b"\x2c\x00\x00\x00\x00\x04\x00\x04\x00")
    body[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 60000, 60000)  # claims 60000^2
    assert gif_frames(bytes(body), limit=64)[1:] == (60000, 60000)
    assert reason_for(bytes(body)) is Reason.TOO_MANY_PIXELS


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_every_frame_of_an_animation_is_decoded(fmt: str) -> None:
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)]
    frames = [Image.new("RGB", (40, 30), c) for c in colours]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=50)
    image = decoded(out.getvalue())
    assert len(image.frames) == 4
    for frame, colour in zip(image.frames, colours, strict=True):
        assert frame.mode == "RGB"
        got = frame.getpixel((20, 15))
        assert isinstance(got, tuple)
        assert max(abs(a - b) for a, b in zip(got, colour, strict=True)) < 40


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_more_frames_than_the_cap_is_too_many_frames(fmt: str) -> None:
    frames = [Image.new("RGB", (8, 8), (i * 30, 0, 0)) for i in range(5)]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=50)
    assert reason_for(out.getvalue(), max_frames=4) is Reason.TOO_MANY_FRAMES
    assert len(decoded(out.getvalue(), max_frames=5).frames) == 5


def test_tiff_with_a_huge_strip_is_refused_in_bounded_time() -> None:
    assert reason_for(tiff_with_one_strip(50000, 50000, strip_bytes=64)) is Reason.TOO_MANY_PIXELS
    # Within the cap, a strip that claims 64 MB but holds 64 bytes is cut short.
    assert reason_for(tiff_with_one_strip(8000, 8000, strip_bytes=64)) is Reason.TRUNCATED


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(1, 256).repeat(8, axis=0)
    image = decoded(encode(Image.fromarray(ramp), "PNG"))
    row = np.asarray(image.frames[0])[4, :, 0]
    assert (int(row[0]), int(row[-1])) == (0, 255)
    assert abs(int(row[128]) - 128) <= 1


def test_cmyk_jpeg_is_not_inverted() -> None:
    white = decoded(encode(Image.new("CMYK", (32, 32), (0, 0, 0, 0)), "JPEG")).frames[0]
    black = decoded(encode(Image.new("CMYK", (32, 32), (0, 0, 0, 255)), "JPEG")).frames[0]
    assert np.asarray(white).min() > 240
    assert np.asarray(black).max() < 15


def test_palette_with_transparency_is_composited_over_white() -> None:
    im = Image.new("P", (10, 10), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((0, 0), 0)
    body = encode(im, "PNG", transparency=1)  # red is transparent, black is not
    frame = decoded(body).frames[0]
    assert frame.getpixel((5, 5)) == (255, 255, 255)
    assert frame.getpixel((0, 0)) == (0, 0, 0)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA", "RGBa", "La"])
def test_transparent_pixels_become_white_in_every_alpha_mode(mode: str) -> None:
    im = Image.new(mode, (4, 4), 0)
    assert to_rgb(im).getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize(
    "mode", ["1", "L", "P", "CMYK", "YCbCr", "I", "I;16", "F", "LAB", "HSV", "RGBX", "RGB"]
)
def test_every_mode_converts_to_rgb(mode: str) -> None:
    grey = Image.new("RGB", (4, 4), (128, 128, 128))
    im = grey.convert("L").convert(mode) if mode in ("I", "I;16", "F") else grey.convert(mode)
    out = to_rgb(im)
    assert out.mode == "RGB"
    assert out.size == (4, 4)


def test_float_image_in_unit_range_is_scaled_to_8_bits() -> None:
    im = Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32), "F")
    assert to_rgb(im).getpixel((0, 0)) == (128, 128, 128)


def test_exif_orientation_is_applied() -> None:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display rotated 90 degrees clockwise
    image = decoded(encode(im, "PNG", exif=exif.tobytes()))
    assert (image.width, image.height) == (20, 40)
    assert image.frames[0].size == (20, 40)
    top = image.frames[0].getpixel((10, 2))
    assert isinstance(top, tuple)
    assert top[2] > 200  # the left strip is now at the top


def test_large_jpeg_is_drafted_unless_full_resolution_is_asked() -> None:
    body = encode(noise(2400, 1800), "JPEG", quality=80)
    fast = decoded(body)
    full = decoded(body, full_resolution=True)
    assert (fast.width, fast.height) == (full.width, full.height) == (2400, 1800)
    assert full.frames[0].size == (2400, 1800)
    assert fast.frames[0].size == (1200, 900)  # 1/2 scale keeps the long side >= 1000


def test_decode_is_safe_from_several_threads() -> None:
    bodies = [encode(noise(300, 200, seed), fmt) for seed, fmt in enumerate(["PNG", "JPEG"] * 4)]
    expected = [np.asarray(decoded(b).frames[0]) for b in bodies]
    failures: list[str] = []

    def work() -> None:
        for _ in range(5):
            for body, want in zip(bodies, expected, strict=True):
                if not np.array_equal(np.asarray(decoded(body).frames[0]), want):
                    failures.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.parametrize("seed", range(30))
def test_random_corruption_never_raises_anything_but_decode_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    fmt = ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"][seed % 6]
    body = bytearray(encode(noise(64, 48, seed), fmt))
    for _ in range(8):
        body[int(rng.integers(0, len(body)))] = int(rng.integers(0, 256))
    reason: Reason | None = None
    try:
        decoded(bytes(body))
    except DecodeError as exc:
        reason = exc.reason
    assert reason is None or isinstance(reason, Reason)


def test_very_long_sixteen_bit_png_is_reduced_along_its_long_axis_only() -> None:
    width, height = 40, 400_000  # 16 MP, one thin strip: PDQ's window is 1 pixel across
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    rows = zlib.compress(bytes(height * (1 + 2 * width)), 9)
    body = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )
    frame = decoded(body).frames[0]
    assert frame.mode == "RGB"
    assert frame.width == width
    assert frame.height <= height // 512


def png_of_rows(
    width: int, height: int, rows: bytes, *, depth: int = 8, colour: int = 2, interlace: int = 0
) -> bytes:
    """A PNG whose IDAT is ``rows`` deflated as one complete zlib stream (however short)."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


# (width, height, bit depth, colour type, interlace): RGB, 16-bit grey, palette-less grey with
# alpha, 1-bit grey, and Adam7-interlaced images down to one row or one pixel.
PNG_SHAPES = [
    (30, 20, 8, 2, 0),
    (30, 20, 16, 0, 0),
    (30, 20, 8, 4, 0),
    (33, 20, 1, 0, 0),
    (30, 21, 8, 6, 1),
    (30, 20, 16, 2, 1),
    (9, 1, 8, 2, 1),
    (1, 1, 8, 0, 1),
    (10001, 3, 8, 2, 0),  # wider than the pattern, which covers the last row's end only
    (10001, 1, 8, 2, 1),
]


def random_rows(width: int, height: int, bits: int, interlaced: bool, seed: int) -> bytes:
    """Image data for a PNG: random pixels, filter type 0 on every row of every Adam7 pass."""
    rng = np.random.default_rng(seed)
    passes = ADAM7_PASSES if interlaced else ((0, 0, 1, 1),)
    out = bytearray()
    for x0, y0, dx, dy in passes:
        columns, rows = max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))
        if columns and rows:
            for _ in range(rows):
                out += b"\x00" + rng.integers(0, 256, (columns * bits + 7) // 8, np.uint8).tobytes()
    return bytes(out)


@pytest.mark.parametrize("shape", PNG_SHAPES, ids=str)
def test_png_whose_image_data_ends_early_is_truncated(
    shape: tuple[int, int, int, int, int],
) -> None:
    width, height, depth, colour, interlace = shape
    bits = depth * {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    rows = random_rows(width, height, bits, bool(interlace), seed=sum(shape))
    png = functools.partial(
        png_of_rows, width, height, depth=depth, colour=colour, interlace=interlace
    )
    whole = decoded(png(rows))
    assert (whole.width, whole.height) == (width, height)
    for cut in sorted({len(rows) - 1, len(rows) // 2, 1}):
        assert reason_for(png(rows[:cut])) is Reason.TRUNCATED, cut


def test_png_cut_short_stays_truncated_when_the_host_loads_truncated_images(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    rows = random_rows(40, 30, 24, False, seed=5)
    assert reason_for(png_of_rows(40, 30, rows[: len(rows) // 3])) is Reason.TRUNCATED
    assert decoded(png_of_rows(40, 30, rows)).frames[0].size == (40, 30)


def test_png_whose_last_rows_are_blank_is_complete_not_truncated() -> None:
    blank = Image.new("RGB", (50, 40), (0, 0, 0))
    blank.paste((200, 30, 30), (0, 0, 50, 10))
    assert decoded(encode(blank, "PNG")).frames[0].getpixel((0, 39)) == (0, 0, 0)
    assert decoded(encode(Image.new("L", (7, 1)), "PNG")).frames[0].size == (7, 1)


def test_apng_whose_second_frame_ends_early_is_truncated() -> None:
    first, second = noise(40, 30, 1), noise(40, 30, 2)
    out = io.BytesIO()
    first.save(out, "PNG", save_all=True, append_images=[second])
    body = out.getvalue()
    assert len(decoded(body).frames) == 2
    # Re-deflate the second frame's data (its fdAT chunk) without its last rows.
    start = body.index(b"fdAT") - 4
    (length,) = struct.unpack_from(">I", body, start)
    sequence, data = body[start + 8 : start + 12], body[start + 12 : start + 8 + length]
    cut = zlib.compress(zlib.decompress(data)[:-200])
    body = body[:start] + png_chunk(b"fdAT", sequence + cut) + body[start + 12 + length :]
    assert reason_for(body) is Reason.TRUNCATED


def test_thin_sixteen_bit_png_whose_data_ends_early_is_truncated_not_hashed() -> None:
    # The fuzzer's 118-byte PNG claiming 40 x 2,097,182 16-bit pixels: once "clean" after ~2 s.
    fixture = Path(__file__).parent / "fixtures" / "regressions"
    body = (fixture / "png-16bit-height-claims-2097182-rows.bin").read_bytes()
    assert reason_for(body) is Reason.TRUNCATED


def pillow_frames(body: bytes) -> list[NDArray[np.uint8]]:
    """Every frame as Pillow composites it (seeking one by one), over white."""
    out = []
    with Image.open(io.BytesIO(body)) as im:
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            out.append(np.asarray(to_rgb(im)))
    return out


def _blocks(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 16, (6, 8), dtype=np.uint8)
    return Image.fromarray(small * 15).resize((40, 30), Image.Resampling.NEAREST).convert("P")


@pytest.mark.parametrize("disposal", [0, 1, 2, 3])
@pytest.mark.parametrize("transparency", [None, 0])
def test_skipping_repeated_gif_frames_gives_the_frames_pillow_composites(
    disposal: int, transparency: int | None
) -> None:
    params: dict[str, Any] = {"disposal": disposal, "duration": 40}
    if transparency is not None:
        params["transparency"] = transparency
    body = gif_sequence([_blocks(1), _blocks(2), _blocks(1)], [0, 0, 0, 1, 1, 2, 2], **params)
    assert gif_frames(body, limit=64)[0] == 7
    image = decoded(body)
    expected = pillow_frames(body)
    assert len(image.frames) == len(expected) == 7
    for index, (frame, want) in enumerate(zip(image.frames, expected, strict=True)):
        assert np.array_equal(np.asarray(frame), want), index
    repeats = disposal in (0, 1)  # only then does drawing a frame twice change nothing
    assert (image.frames[1] is image.frames[0]) is repeats
    assert image.frames[3] is not image.frames[2]


def test_gif_whose_frames_all_repeat_decodes_one_frame() -> None:
    body = gif_sequence([_blocks(3)], [0] * 64, duration=20)
    image = decoded(body, max_total_pixels=40 * 30)  # one frame's worth: the others are free
    assert len(image.frames) == 64
    assert len({id(frame) for frame in image.frames}) == 1


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_animation_decoding_more_pixels_than_the_budget_is_too_many_pixels(fmt: str) -> None:
    frames = [Image.new("RGB", (40, 30), (30 * i, 200 - 20 * i, 0)) for i in range(6)]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=50)
    assert reason_for(out.getvalue(), max_total_pixels=5 * 40 * 30) is Reason.TOO_MANY_PIXELS
    assert len(decoded(out.getvalue(), max_total_pixels=6 * 40 * 30).frames) == 6


def test_compressed_tiff_whose_strip_is_too_big_to_decode_at_once_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # libtiff holds a whole strip besides the frame: the cap (64 MB) is lowered to test cheaply.
    monkeypatch.setattr("safemedia.imaging.MAX_TIFF_STRIP_BYTES", 10_000)
    image = noise(100, 100)
    one_strip = encode(image, "TIFF", compression="tiff_adobe_deflate", strip_size=1 << 20)
    assert reason_for(one_strip) is Reason.TOO_MANY_PIXELS
    small_strips = encode(image, "TIFF", compression="tiff_adobe_deflate", strip_size=4096)
    assert decoded(small_strips).frames[0].size == (100, 100)
    uncompressed = encode(image, "TIFF", strip_size=1 << 20)  # read row by row, no strip buffer
    assert decoded(uncompressed).frames[0].size == (100, 100)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_alpha_frames_reduced_in_bands_match_flattening_the_whole_frame(orientation: int) -> None:
    from safemedia.hashing import hash_image

    image = picture(orientation, (160, 120)).resize((1600, 1200), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(orientation)
    alpha = Image.fromarray(rng.integers(0, 256, (120, 160), np.uint8), "L")
    image.putalpha(alpha.resize((1600, 1200), Image.Resampling.BICUBIC))
    exif = Image.Exif()
    exif[0x0112] = orientation
    body = encode(image, "PNG", exif=exif, compress_level=1)
    fast = hash_image("pdq", decoded(body).frames[0]).value
    full = hash_image("pdq", decoded(body, full_resolution=True).frames[0]).value
    distance = sum(bin(a ^ b).count("1") for a, b in zip(fast, full, strict=True))
    assert distance <= 8


def _grey_bottom(size: tuple[int, int]) -> Image.Image:
    image = picture(9, (size[0] // 10, size[1] // 10)).resize(size, Image.Resampling.BICUBIC)
    image.paste((128, 128, 128), (0, size[1] * 3 // 4, size[0], size[1]))
    return image


JPEG_VARIANTS = {
    "baseline": ((400, 300), "RGB", {}),
    "greyscale": ((400, 300), "L", {}),
    "restart-markers": ((400, 300), "RGB", {"restart_marker_rows": 1}),
    "drafted-at-half-size": ((1600, 1200), "RGB", {}),
}


@pytest.mark.parametrize("variant", sorted(JPEG_VARIANTS))
def test_jpeg_cut_short_with_an_end_marker_added_is_truncated(variant: str) -> None:
    size, mode, params = JPEG_VARIANTS[variant]
    body = encode(
        picture(8, (size[0] // 10, size[1] // 10)).resize(size).convert(mode), "JPEG", **params
    )
    for fraction in (0.3, 0.9):
        cut = body[: int(len(body) * fraction)] + b"\xff\xd9"  # libjpeg fills the rest in grey
        assert reason_for(cut) is Reason.TRUNCATED, fraction


@pytest.mark.parametrize("variant", sorted(JPEG_VARIANTS))
def test_complete_jpeg_whose_bottom_is_flat_mid_grey_is_not_truncated(variant: str) -> None:
    size, mode, params = JPEG_VARIANTS[variant]
    body = encode(_grey_bottom(size).convert(mode), "JPEG", **params)
    frame = decoded(body).frames[0]
    assert frame.getpixel((0, frame.height - 1)) == (128, 128, 128)
