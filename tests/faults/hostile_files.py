"""Hostile and worst-case legal files for the decode budget tests, made here (nothing downloaded).

Bombs whose headers claim more than the limits, deep pages (16-bit, float, RGBA) just under them,
a G4 TIFF of thousands of pages, a 3 KB PDF of nested form XObjects (each drawing the next ten times),
and a PDF of 500 pages of 200 x 200 inches.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pikepdf
from pikepdf import Array, Dictionary, Name, Stream
from PIL import Image

A3_600DPI = (7016, 9921)  # 69.6 Mpx: the largest scan a copier makes
A4_300DPI = (2480, 3508)
JUST_UNDER_120_MPX = (10_950, 10_950)  # 119.9 Mpx
PNG_COLOUR_TYPES = {"L": 0, "RGB": 2, "RGBA": 6}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_header_only(path: Path, size: tuple[int, int], mode: str = "RGB", depth: int = 8) -> Path:
    """A ~100-byte PNG whose header claims ``size`` pixels of ``mode`` at ``depth`` bits."""
    header = struct.pack(">IIBBBBB", size[0], size[1], depth, PNG_COLOUR_TYPES[mode], 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024, 9)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )
    return path


def png_bomb(path: Path, side: int = 50_000) -> Path:
    """A PNG whose header claims side x side 8-bit RGB pixels (7.5 GB decoded)."""
    return png_header_only(path, (side, side), "RGB")


def jpeg_bomb(path: Path, side: int = 65_000) -> Path:
    """A small JPEG whose frame header is rewritten to claim side x side pixels."""
    Image.new("RGB", (64, 64), "white").save(path, quality=90)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    path.write_bytes(bytes(data))
    return path


def tiff_header_claiming(path: Path, mode: str, size: tuple[int, int]) -> Path:
    """A tiny TIFF of ``mode`` whose ImageWidth and ImageLength tags claim ``size``."""
    Image.new(mode, (16, 16)).save(path, format="TIFF")
    data = bytearray(path.read_bytes())
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack(order + "HH", data[entry : entry + 4])
        if tag in (256, 257):
            value = size[0] if tag == 256 else size[1]
            fmt = order + ("H" if kind == 3 else "I")
            data[entry + 8 : entry + 8 + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))
    return path


def _text_lines(shape: tuple[int, int], ink: object, ground: object, dtype: type) -> np.ndarray:
    arr = np.full(shape, ground, dtype=dtype)
    for top in range(300, shape[0] - 300, 120):
        arr[top : top + 40, 200 : shape[1] - 200 - (top % 1000)] = ink
    return arr


def bilevel_scan(path: Path, size: tuple[int, int] = A3_600DPI, pages: int = 1) -> Path:
    """Bilevel CCITT G4 TIFF pages: a few hundred kilobytes of file for tens of megapixels."""
    frames = [Image.fromarray(_text_lines((size[1], size[0]), False, True, bool)) for _ in range(pages)]
    frames[0].save(path, compression="group4", save_all=True, append_images=frames[1:], dpi=(600, 600))
    return path


def deep_scan(path: Path, mode: str, size: tuple[int, int]) -> Path:
    """A text-like page of ``mode`` (I;16, F or RGBA) as a deflate TIFF (PNG for RGBA)."""
    shape = (size[1], size[0])
    if mode == "I;16":
        Image.fromarray(_text_lines(shape, 3000, 60000, np.uint16)).save(
            path, compression="tiff_adobe_deflate"
        )
    elif mode == "F":
        Image.fromarray(_text_lines(shape, 0.05, 0.95, np.float32), "F").save(
            path, compression="tiff_adobe_deflate"
        )
    else:
        grey = _text_lines(shape, 20, 235, np.uint8)
        rgba = np.stack([grey, grey, grey, np.full(shape, 200, np.uint8)], axis=-1)
        del grey
        Image.fromarray(rgba, "RGBA").save(path, compress_level=1)
    return path


def many_page_tiff(path: Path, pages: int, size: tuple[int, int] = (64, 64)) -> Path:
    frame = Image.new("1", size, 1)
    frame.save(path, compression="group4", save_all=True, append_images=[frame] * (pages - 1))
    return path


def nested_xobject_pdf(path: Path, depth: int = 9, fan: int = 10) -> Path:
    """One page drawing a form that draws the next form ``fan`` times, ``depth`` deep (fan**depth paths)."""
    pdf = pikepdf.new()
    child = Stream(pdf, b"0 0 m 5 5 l 10 0 l h f")
    child.Type, child.Subtype, child.BBox = Name.XObject, Name.Form, Array([0, 0, 10, 10])
    for _ in range(depth):
        body = b"".join(b"q 0.5 0 0 0.5 %d %d cm /X Do Q\n" % (i * 7 % 50, i * 13 % 50) for i in range(fan))
        form = Stream(pdf, body)
        form.Type, form.Subtype, form.BBox = Name.XObject, Name.Form, Array([0, 0, 100, 100])
        form.Resources = Dictionary(XObject=Dictionary(X=child))
        child = form
    page = pdf.add_blank_page(page_size=(595, 842))
    page.obj.Resources = Dictionary(XObject=Dictionary(X=child))
    page.obj.Contents = Stream(pdf, b"q 5 0 0 5 0 0 cm /X Do Q")
    pdf.save(path, compress_streams=True)
    return path


def huge_page_pdf(path: Path, pages: int = 500, side_pt: int = 14_400) -> Path:
    """``pages`` pages of 200 x 200 inches (PDF's largest), each filled with rectangles (a few KB)."""
    pdf = pikepdf.new()
    rects = b"".join(
        b"%d %d 400 300 re\n" % (x, y) for x in range(0, side_pt, 900) for y in range(0, side_pt, 700)
    )
    content = Stream(pdf, rects + b"0.2 g f\n")
    for _ in range(pages):
        pdf.add_blank_page(page_size=(side_pt, side_pt)).obj.Contents = content
    pdf.save(path, compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    return path
