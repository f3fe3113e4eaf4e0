"""Hostile inputs: small valid seeds in every format, byte mutations of them, and bombs.

Every picture here is synthetic (``tests.synthetic``): harmless by construction.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st
from PIL import Image

from tests.synthetic import encode, gif_sequence, picture

# --- seeds: small valid files in every format the decoder accepts ------------------------------


def _animated(fmt: str, frames: list[Image.Image], **params: object) -> bytes:
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], **params)
    return out.getvalue()


def seed_files() -> dict[str, bytes]:
    """Small valid images, one per format and interesting variant, named ``variant.ext``."""
    small = picture(1, (40, 30))
    other = picture(2, (40, 30))
    rgba = small.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((40, 30)))
    palette = small.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    gray16 = Image.linear_gradient("L").resize((40, 30)).convert("I;16")
    return {
        "baseline.jpg": encode(small, "JPEG", quality=80),
        "progressive.jpg": encode(small, "JPEG", quality=60, progressive=True),
        "cmyk.jpg": encode(small.convert("CMYK"), "JPEG"),
        "rgb.png": encode(small, "PNG"),
        "rgba.png": encode(rgba, "PNG"),
        "palette-transparent.png": encode(palette, "PNG"),
        "gray16.png": encode(gray16, "PNG"),
        "animated.png": _animated("PNG", [small, other]),
        "still.gif": encode(small, "GIF"),
        "animated.gif": _animated("GIF", [small, other, small], duration=50, loop=0),
        "lossy.webp": encode(small, "WEBP", quality=50),
        "lossless.webp": encode(rgba, "WEBP", lossless=True),
        "animated.webp": _animated("WEBP", [small, other], duration=50),
        "raw.tiff": encode(small, "TIFF"),
        "lzw.tiff": encode(small, "TIFF", compression="tiff_lzw"),
        "multipage.tiff": _animated("TIFF", [small, other]),
        "rgb.bmp": encode(small, "BMP"),
        "palette.bmp": encode(palette.convert("RGB").convert("P"), "BMP"),
        "icon.ico": encode(small, "ICO", sizes=[(16, 16), (24, 24)]),
    }


# --- byte mutations ---------------------------------------------------------------------------

INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class Mutation:
    """One edit of a byte string; positions are taken modulo its length."""

    op: str
    pos: int
    arg: int = 0
    data: bytes = b""

    def apply(self, body: bytes) -> bytes:
        if not body:
            return self.data
        n = len(body)
        i = self.pos % n
        if self.op == "flip":
            return body[:i] + bytes([body[i] ^ (1 << (self.arg % 8))]) + body[i + 1 :]
        if self.op == "set":
            return body[:i] + bytes([self.arg % 256]) + body[i + 1 :]
        if self.op in ("set16", "set32"):
            size = 2 if self.op == "set16" else 4
            value = INTERESTING[self.arg % len(INTERESTING)] & (0xFFFF if size == 2 else 0xFFFFFFFF)
            order = ">" if self.arg % 2 else "<"
            packed = struct.pack(order + ("H" if size == 2 else "I"), value)
            return body[:i] + packed + body[i + size :]
        if self.op == "delete":
            return body[:i] + body[i + 1 + self.arg % 64 :]
        if self.op == "insert":
            return body[:i] + self.data + body[i:]
        if self.op == "duplicate":
            chunk = body[i : i + 1 + self.arg % 256]
            return body[:i] + chunk * (2 + self.arg % 3) + body[i:]
        if self.op == "truncate":
            return body[:i]
        raise ValueError(f"unknown mutation {self.op!r}")


_OPS = ("flip", "set", "set16", "set32", "delete", "insert", "duplicate", "truncate")


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    """One mutation, biased towards the header (the first 64 bytes) where the structure is."""
    op = draw(st.sampled_from(_OPS))
    header = draw(st.booleans())
    pos = draw(st.integers(0, 63) if header else st.integers(0, 1 << 20))
    arg = draw(st.integers(0, 1 << 16))
    data = draw(st.binary(min_size=1, max_size=32)) if op == "insert" else b""
    return Mutation(op, pos, arg, data)


def fix_png_crcs(body: bytes) -> bytes:
    """Recompute every PNG chunk CRC, so a mutation reaches the parser behind the checksum."""
    if not body.startswith(b"\x89PNG\r\n\x1a\n"):
        return body
    out = bytearray(body[:8])
    i = 8
    while i + 8 <= len(body):
        (length,) = struct.unpack(">I", body[i : i + 4])
        end = i + 8 + length
        if end + 4 > len(body):
            out += body[i:]
            break
        chunk_type_and_data = body[i + 4 : end]
        out += body[i : i + 4] + chunk_type_and_data
        out += struct.pack(">I", zlib.crc32(chunk_type_and_data) & 0xFFFFFFFF)
        i = end + 4
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Case:
    """One fuzz case: which seed, which mutations, and the resulting bytes."""

    seed: str
    edits: tuple[Mutation, ...]
    fix_crc: bool
    body: bytes


def hostile_cases(seeds: dict[str, bytes]) -> st.SearchStrategy[Case]:
    """Mutated seeds: 1-6 edits each, PNG CRCs repaired half of the time, sometimes spliced."""
    names = sorted(seeds)

    @st.composite
    def build(draw: st.DrawFn) -> Case:
        name = draw(st.sampled_from(names))
        edits = tuple(draw(st.lists(mutations(), min_size=1, max_size=6)))
        body = seeds[name]
        if draw(st.integers(0, 9)) == 0:  # splice: this seed's head, another's tail
            other = seeds[draw(st.sampled_from(names))]
            cut = draw(st.integers(0, len(body)))
            body = body[:cut] + other[cut:]
        for edit in edits:
            body = edit.apply(body)
        fix = draw(st.booleans())
        if fix:
            body = fix_png_crcs(body)
        return Case(name, edits, fix, body)

    return build()


# --- bombs ------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, *, colour_type: int = 2, idat: bytes = b"") -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (8-bit), with the given IDAT payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    payload = idat or zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", payload)
        + _png_chunk(b"IEND", b"")
    )


def zeros_deflated(total: int, *, wbits: int = zlib.MAX_WBITS) -> bytes:
    """``total`` zero bytes deflated (zlib; gzip with ``wbits=31``), never all held at once.

    Fast: one 1 MiB block is compressed after a full flush (which resets the compressor), so its
    output is the same every time and is repeated; only the checksum walks all the bytes.
    """
    block = 1 << 20
    whole, rest = divmod(total, block)
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = b"\x00" * block
    steady = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    assert again == steady
    body = steady * whole + comp.compress(b"\x00" * rest) + comp.flush()
    if wbits == 31:
        crc = 0
        for _ in range(whole):
            crc = zlib.crc32(zeros, crc)
        crc = zlib.crc32(b"\x00" * rest, crc)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        return header + body + struct.pack("<II", crc, total & 0xFFFFFFFF)
    adler = 1
    for _ in range(whole):
        adler = zlib.adler32(zeros, adler)
    adler = zlib.adler32(b"\x00" * rest, adler)
    return b"\x78\xda" + body + struct.pack(">I", adler)


def png_zlib_bomb(width: int, height: int) -> bytes:
    """A real greyscale PNG of ``width`` x ``height`` zeros: tiny file, huge when decoded."""
    rows = height * (width + 1)  # one filter byte a row
    return png_claiming(width, height, colour_type=0, idat=zeros_deflated(rows))


def gif_claiming(width: int, height: int) -> bytes:
    """A GIF whose logical screen is ``width`` x ``height``, holding one 1x1 frame."""
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
    palette = b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + palette + image + b"\x3b"


def gif_many_frames(frames: int, size: tuple[int, int] = (8, 8)) -> bytes:
    """An animated GIF of ``frames`` tiny frames (each differs, so none is merged away)."""
    w, h = size
    header = b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0)
    palette = bytes(i % 256 for i in range(256 * 3))
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    body = bytearray(header + palette + loop)
    for n in range(frames):
        body += b"\x21\xf9\x04\x04\x01\x00\x00\x00"  # graphic control: 10 ms, no disposal
        body += b"\x2c" + struct.pack("<HHHHB", n % w, 0, 1, 1, 0)
        body += b"\x08\x03" + bytes([n % 256, 0x01, 0x01]) + b"\x00"
    body += b"\x3b"
    return bytes(body)


def _skip_sub_blocks(body: bytes, i: int) -> int:
    while body[i]:
        i += body[i] + 1
    return i + 1


def gif_heavy(frames: int, size: tuple[int, int]) -> bytes:
    """A GIF of ``frames`` full-size solid frames: small on the wire, big once every frame is
    decoded. Pillow encodes one frame; its image block is then repeated."""
    one = encode(Image.new("L", size, 7), "GIF")
    packed = one[10]
    i = 13 + ((3 << ((packed & 7) + 1)) if packed & 0x80 else 0)
    head = one[:i]
    while one[i] != 0x2C:  # skip extensions before the image
        i = _skip_sub_blocks(one, i + 2)
    start = i
    i += 10
    if one[start + 9] & 0x80:
        i += 3 << ((one[start + 9] & 7) + 1)
    end = _skip_sub_blocks(one, i + 1)
    gce = b"\x21\xf9\x04\x00\x02\x00\x00\x00"  # 20 ms, no disposal, no transparency
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return head + loop + (gce + one[start:end]) * frames + b"\x3b"


def gif_alternating(frames: int, size: tuple[int, int]) -> bytes:
    """A GIF of ``frames`` full-size frames, two pictures taking turns: none repeats the one
    before it, so every frame must be decoded."""
    light = Image.new("L", size, 200)
    light.paste(7, (0, 0, size[0], size[1] // 2))
    return gif_sequence([Image.new("L", size, 7), light], [n % 2 for n in range(frames)])


def tiff_claiming(
    width: int, height: int, *, strip_bytes: int, data: bytes = b"\x00" * 64
) -> bytes:
    """A little-endian RGB TIFF with one strip of ``strip_bytes`` claimed; ``data`` follows."""
    entries = [
        (256, 4, 1, width),  # ImageWidth
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample (one value for all samples; Pillow accepts it)
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 2),  # Photometric: RGB
        (273, 4, 1, 0),  # StripOffsets (patched below)
        (277, 3, 1, 3),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip: one strip
        (279, 4, 1, strip_bytes),  # StripByteCounts
    ]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = ifd_offset + ifd_size
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = data_offset
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0)
    return bytes(out + data)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small valid JPEG whose SOF marker is rewritten to claim ``width`` x ``height``."""
    body = bytearray(encode(picture(3, (16, 16)), "JPEG"))
    i = body.index(b"\xff\xc0")
    struct.pack_into(">HH", body, i + 5, height, width)
    return bytes(body)


def webp_claiming(width: int, height: int) -> bytes:
    """A VP8X WebP whose canvas claims ``width`` x ``height`` around a tiny lossless image."""
    inner = encode(picture(4, (8, 8)), "WEBP", lossless=True)
    vp8l = inner[12:]  # the VP8L chunk of the simple file
    flags = b"\x00\x00\x00\x00"
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    vp8x = b"VP8X" + struct.pack("<I", 10) + flags + canvas
    payload = b"WEBP" + vp8x + vp8l
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


BombMaker = Callable[[], bytes]


def _big(seed: int) -> Image.Image:
    """An 8000x6000 picture that compresses well (so the file is small and quick to make)."""
    return picture(seed, (80, 60)).resize((8000, 6000), Image.Resampling.NEAREST)


# Heavy but legitimate: within the default caps, so any verdict is right; memory must stay bounded.
HEAVY: dict[str, BombMaker] = {
    "png-zlib-bomb-9000x9000-under-pixel-cap": lambda: png_zlib_bomb(9000, 9000),
    "gif-64-frames-of-2000x2000": lambda: gif_heavy(64, (2000, 2000)),
    "gif-25-alternating-frames-of-2000x2000-at-the-pixel-budget": lambda: gif_alternating(
        25, (2000, 2000)
    ),
    "jpeg-8000x6000": lambda: encode(_big(5), "JPEG", quality=85),
    "tiff-8000x6000-one-deflate-strip": lambda: encode(
        _big(6), "TIFF", compression="tiff_adobe_deflate", strip_size=1 << 30
    ),
    "tiff-8000x6000-deflate-strips-of-1-mb": lambda: encode(
        _big(6), "TIFF", compression="tiff_adobe_deflate", strip_size=1 << 20
    ),
}

# name -> (maker, acceptable reasons). Each must be uninspectable for one of these reasons.
BOMBS: dict[str, tuple[BombMaker, frozenset[str]]] = {
    "png-header-60000x60000": (
        lambda: png_claiming(60000, 60000),
        frozenset({"too_many_pixels"}),
    ),
    "png-zlib-bomb-20000x20000": (
        lambda: png_zlib_bomb(20000, 20000),
        frozenset({"too_many_pixels"}),
    ),
    "gif-screen-65535x65535": (
        lambda: gif_claiming(65535, 65535),
        frozenset({"too_many_pixels"}),
    ),
    "gif-5000-frames": (
        lambda: gif_many_frames(5000),
        frozenset({"too_many_frames"}),
    ),
    "gif-100-frames-of-2000x2000": (
        lambda: gif_heavy(100, (2000, 2000)),
        frozenset({"too_many_frames"}),
    ),
    "gif-64-alternating-frames-of-2000x2000": (
        lambda: gif_alternating(64, (2000, 2000)),
        frozenset({"too_many_pixels"}),
    ),
    "tiff-huge-strip": (
        lambda: tiff_claiming(4000, 4000, strip_bytes=0xFFFFFFF0),
        frozenset({"truncated", "undecodable"}),
    ),
    "tiff-header-100000x100000": (
        lambda: tiff_claiming(100000, 100000, strip_bytes=0xFFFFFFF0),
        frozenset({"too_many_pixels"}),
    ),
    "jpeg-sof-65500x65500": (
        lambda: jpeg_claiming(65500, 65500),
        frozenset({"too_many_pixels"}),
    ),
    "webp-canvas-16384x16384": (
        lambda: webp_claiming(16384, 16384),
        frozenset({"too_many_pixels", "undecodable"}),
    ),
}
