"""A corpus of page files the tests generate: every supported format, and files that must fail.

Each entry says what decoding must give: the number of pages and the expected class of each page for
the tiny model (``dark`` = black page, ``light`` = white page, ``None`` = not checked), or the words
the failure reason must contain.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

BLACK, WHITE = 0, 255


@dataclass(frozen=True)
class Case:
    name: str
    pages: int = 1  # expected pages when readable
    labels: tuple[str | None, ...] = ()  # expected tiny-model label per page
    error: str | None = None  # words of the reason when it must fail

    @property
    def readable(self) -> bool:
        return self.error is None


def _page(level: int, size: tuple[int, int] = (90, 120)) -> Image.Image:
    arr = np.full((size[1], size[0], 3), level, dtype=np.uint8)
    arr[5:9, 5:-5] = 255 - level  # a line of "text"
    return Image.fromarray(arr, "RGB")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (1-bit grey): a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _sixteen_bit(level16: int) -> Image.Image:
    arr = np.full((120, 90), level16, dtype=np.uint16)
    arr[5:9, 5:-5] = 65535 - level16
    return Image.fromarray(arr)  # mode I;16


def _exif_rotated() -> bytes:
    img = _page(BLACK, (160, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def _save(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _multi(fmt: str, levels: list[int], **kwargs: object) -> bytes:
    pages = [_page(level) for level in levels]
    buf = io.BytesIO()
    pages[0].save(buf, fmt, save_all=True, append_images=pages[1:], **kwargs)
    return buf.getvalue()


def good_files() -> dict[str, tuple[bytes, Case]]:
    black, white = _page(BLACK), _page(WHITE)
    rgba = Image.new("RGBA", (90, 120), (0, 0, 0, 0))  # fully transparent: white paper shows through
    bilevel = black.convert("L").point(lambda v: 255 if v > 127 else 0).convert("1")
    return {
        "black.jpg": (_save(black, "JPEG"), Case("jpeg", 1, ("dark",))),
        "white-cmyk.jpg": (_save(white.convert("CMYK"), "JPEG"), Case("cmyk jpeg", 1, ("light",))),
        "rotated.jpg": (_exif_rotated(), Case("exif orientation", 1, ("dark",))),
        "black.png": (_save(black, "PNG"), Case("png", 1, ("dark",))),
        "white-palette.png": (_save(white.convert("P"), "PNG"), Case("palette png", 1, ("light",))),
        "transparent.png": (_save(rgba, "PNG"), Case("alpha png", 1, ("light",))),
        "dark16.png": (_save(_sixteen_bit(1500), "PNG"), Case("16-bit png", 1, ("dark",))),
        "dark16.tif": (_save(_sixteen_bit(1500), "TIFF"), Case("16-bit tiff", 1, ("dark",))),
        "three.tif": (
            _multi("TIFF", [BLACK, WHITE, BLACK]),
            Case("multi-page tiff", 3, ("dark", "light", "dark")),
        ),
        "g4.tif": (_save(bilevel, "TIFF", compression="group4"), Case("bilevel g4 tiff", 1, ("dark",))),
        "white.bmp": (_save(white, "BMP"), Case("bmp", 1, ("light",))),
        "black.webp": (_save(black, "WEBP", lossless=True), Case("webp", 1, ("dark",))),
        "white.gif": (_save(white.convert("P"), "GIF"), Case("gif", 1, ("light",))),
        "two.pdf": (
            _multi("PDF", [BLACK, WHITE], resolution=72.0),
            Case("multi-page pdf", 2, ("dark", "light")),
        ),
        "png-named.jpg": (_save(white, "PNG"), Case("mislabelled extension, readable", 1, ("light",))),
        "animated.gif": (_multi("GIF", [WHITE, BLACK]), Case("animated gif: one page", 1, ("light",))),
    }


def bad_files(good: dict[str, tuple[bytes, Case]]) -> dict[str, tuple[bytes, Case]]:
    jpeg, png, pdf = good["black.jpg"][0], good["black.png"][0], good["two.pdf"][0]
    rng = np.random.default_rng(7)
    return {
        "truncated.jpg": (jpeg[: len(jpeg) // 2], Case("truncated jpeg", error="truncated")),
        "truncated.png": (png[: len(png) // 2], Case("truncated png", error="truncated")),
        "truncated.pdf": (pdf[: len(pdf) // 3], Case("truncated pdf", error="PDF")),
        "empty.png": (b"", Case("zero bytes", error="empty file")),
        "random.tif": (rng.bytes(4096), Case("random bytes", error="unsupported file type")),
        "text-named.png": (
            b"just some text, not an image\n" * 20,
            Case("mislabelled text", error="unsupported"),
        ),
        "bomb.png": (bomb_png(), Case("decompression bomb", error="decompression bomb")),
    }


def write_corpus(folder: Path) -> dict[Path, Case]:
    """Write every case into ``folder``; {path: expected outcome}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = good_files()
    cases: dict[Path, Case] = {}
    for name, (data, case) in {**good, **bad_files(good)}.items():
        path = folder / name
        path.write_bytes(data)
        cases[path] = case
    return cases
