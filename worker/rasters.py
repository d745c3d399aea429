"""Raster files (JPEG, PNG, TIFF incl. multi-page and G4, BMP, WebP, GIF): pages checked, then decoded once.

Each page's header is checked against the limits before a pixel is decoded: its pixels as declared,
then the bytes its decode will hold (pixels x bytes a pixel of its mode, after JPEG's DCT scaling).
``reduced_page`` decodes a page once at the smallest scale its decoder offers that serves a size: a
JPEG straight at 1/8, 1/4 or 1/2 scale (``Image.draft``, DCT scaling), any other page whole in its own
mode, turned into 8 bits strip by strip and kept grey when it is grey (a bilevel or grey page is 1 byte
a pixel, never converted to RGB at full size); the model's input and the preview are area-resized from
that one array. A scanner's plain 8-bit grey PNG, and a grey or RGB JPEG at its DCT scale, are decoded
by OpenCV straight into that array (the same pixels, one copy of the page fewer).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from worker.limits import DecodeLimits, bytes_per_pixel
from worker.pixels import (
    SWAPS_SIDES,
    TIME_UP,
    UnreadableImage,
    decode_failure,
    eight_bit_array,
    oriented,
    serves,
)

MULTI_PAGE_FORMATS = {"TIFF"}  # a GIF's, WebP's or APNG's extra frames are animation, not pages
ORIENTATION = 0x0112
DCT_FORMATS = {"JPEG"}  # decoders that scale while decoding (Image.draft): orientation read first
JPEG_MODES = ("L", "RGB")  # a CMYK or YCCK JPEG in a PDF is rendered (PDFium applies its Decode array)
# OpenCV's read flags for a grey or colour JPEG at each DCT scale (REDUCED_GRAYSCALE_k is the bit of the
# scale, COLOR_RGB makes it colour); the EXIF turn is applied by the caller, as for Pillow's decode
JPEG_READ = {
    "L": {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
          8: cv2.IMREAD_REDUCED_GRAYSCALE_8},
    "RGB": {1: cv2.IMREAD_COLOR_RGB, 2: cv2.IMREAD_COLOR_RGB | cv2.IMREAD_REDUCED_GRAYSCALE_2,
            4: cv2.IMREAD_COLOR_RGB | cv2.IMREAD_REDUCED_GRAYSCALE_4,
            8: cv2.IMREAD_COLOR_RGB | cv2.IMREAD_REDUCED_GRAYSCALE_8},
}  # fmt: skip


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(ORIENTATION, 1)
    except Exception:  # a broken EXIF block does not make the page unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def check_pixels(path: Path, img: Image.Image, limits: DecodeLimits) -> None:
    w, h = img.size
    if w == 0 or h == 0:
        raise UnreadableImage(path, "image has no pixels")
    if w * h > limits.max_page_pixels:
        raise UnreadableImage(
            path,
            f"decompression bomb refused: {w}x{h} = {w * h:,} pixels exceeds the limit of "
            f"{limits.max_page_pixels:,} (DOCSORT_MAX_PAGE_PIXELS)",
        )


def check_bytes(path: Path, img: Image.Image, limits: DecodeLimits, number: int) -> None:
    """Refuse a page whose decode would hold more than the byte limit (its mode's bytes a pixel)."""
    w, h = img.size
    need = w * h * bytes_per_pixel(img.mode)
    if need > limits.max_page_bytes:
        raise UnreadableImage(
            path,
            f"page {number} needs {need / 2**20:,.0f} MB to decode ({w}x{h} pixels in mode {img.mode}, "
            f"{bytes_per_pixel(img.mode)} bytes a pixel), over the limit of {limits.max_page_mb} MB "
            "(DOCSORT_MAX_PAGE_MB)",
        )


def raster_frames(path: Path, limits: DecodeLimits) -> Generator[tuple[int, Image.Image], None, None]:
    """(page number, the open image at that page) for each page, its declared pixels checked."""
    try:
        with Image.open(path) as img:
            n = getattr(img, "n_frames", 1) if img.format in MULTI_PAGE_FORMATS else 1
            if n > limits.max_pages:
                raise UnreadableImage(
                    path, f"{n} pages exceeds the limit of {limits.max_pages} (DOCSORT_MAX_PAGES)"
                )
            for index in range(n):
                img.seek(index)
                check_pixels(path, img, limits)
                yield index + 1, img
    except (UnreadableImage, *TIME_UP):
        raise
    except Exception as exc:  # decoders raise many types on hostile input; each becomes a reason
        raise decode_failure(path, exc) from exc


def full_page(path: Path, img: Image.Image, number: int, limits: DecodeLimits) -> Image.Image:
    """The page whole, oriented, as 8-bit RGB."""
    check_bytes(path, img, limits, number)
    img.load()
    arr = oriented(eight_bit_array(img), _orientation(img))
    return Image.fromarray(arr if arr.ndim == 3 else cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB), "RGB")


@dataclass
class DecodedRaster:
    size: tuple[int, int]  # the page's own (width, height), oriented
    pixels: np.ndarray  # uint8 HxW or HxWx3, stored orientation, at the decoded scale
    orientation: int  # EXIF orientation still to apply to ``pixels``

    @property
    def decoded_size(self) -> tuple[int, int]:
        """(width, height) of ``pixels`` once oriented."""
        h, w = self.pixels.shape[:2]
        return (h, w) if self.orientation in SWAPS_SIDES else (w, h)


def reduced_page(
    path: Path,
    img: Image.Image,
    number: int,
    need: Callable[[int, int], tuple[int, int]],
    limits: DecodeLimits,
    orientation: int | None = None,
) -> DecodedRaster:
    """The page decoded once, at the smallest scale its decoder offers that is at least ``need(width,
    height)`` of its own oriented size (a JPEG at 1/8, 1/4, 1/2 or 1; any other page whole).
    ``orientation`` overrides the page's EXIF orientation (a JPEG inside a PDF is drawn as stored)."""
    w, h = img.size  # its own size (the draft below makes a JPEG's decode smaller)
    if orientation is None and img.format in DCT_FORMATS:
        orientation = _orientation(img)  # from the header: it decides the DCT scale
    if orientation is not None:
        swap = orientation in SWAPS_SIDES
        need_w, need_h = need(*((h, w) if swap else (w, h)))
        img.draft(None, (need_h, need_w) if swap else (need_w, need_h))  # JPEG's DCT scaling
    check_bytes(path, img, limits, number)
    plain = _plain_grey_png(path, img)
    if plain is not None:
        return DecodedRaster((w, h), plain, 1)
    plain = _plain_jpeg(path, img, (w, h))
    if plain is not None and orientation is not None:
        return DecodedRaster((h, w) if orientation in SWAPS_SIDES else (w, h), plain, orientation)
    img.load()
    if orientation is None:  # only after the checked decode: Pillow decodes a PNG to read its EXIF
        orientation = _orientation(img)
    size = (h, w) if orientation in SWAPS_SIDES else (w, h)
    return DecodedRaster(size, eight_bit_array(img), orientation)


def _plain_grey_png(path: Path, img: Image.Image) -> np.ndarray | None:
    """An 8-bit greyscale PNG (no EXIF, no transparency, not interlaced: a scanner's grey page) decoded
    by OpenCV straight into the page's array: the same pixels as Pillow's decode, without Pillow's copy
    of the page into an array (13% of a grey A4 page's decode). None for any other PNG, or when OpenCV
    cannot read it: Pillow then decodes it and says what is wrong."""
    if img.format != "PNG" or img.mode != "L" or img.info.get("interlace") or "transparency" in img.info:
        return None
    tile = getattr(img, "tile", [])  # an ImageFile's: how its pixels are stored
    if len(tile) != 1 or tile[0][3] != "L":  # 8 bits a pixel (not 2 or 4, scaled by Pillow)
        return None
    data = _whole_file(path, img.width * img.height + img.height)  # at most the page's raw rows
    if data is None or b"eXIf" in data:  # an EXIF chunk may turn the page: Pillow reads it
        return None
    return _opencv_decode(data, cv2.IMREAD_UNCHANGED, (img.height, img.width))


def _plain_jpeg(path: Path, img: Image.Image, size: tuple[int, int]) -> np.ndarray | None:
    """A grey or RGB JPEG of stored ``size`` (the file ``path``, or a PDF page's JPEG held in memory)
    decoded by OpenCV at the DCT scale its draft chose, straight into the page's array: the same pixels
    as Pillow's decode (the same libjpeg-turbo scaled IDCT, upsampling and colour conversion), without
    Pillow's copy of the page into an array (6 of 23 ms of CPU for an A4 page at 1/2). None for any
    other JPEG (CMYK, no end marker: a truncated file), or when OpenCV cannot read it or gives another
    size: Pillow then decodes it and says what is wrong."""
    if img.format != "JPEG" or img.mode not in JPEG_MODES:
        return None
    w, h = size
    scale = next((s for s in (1, 2, 4, 8) if img.size == (-(-w // s), -(-h // s))), None)
    if scale is None:
        return None
    held = getattr(img, "fp", None)  # the stream an ImageFile reads from
    # a PDF page's JPEG is handed out by the render process; a file is read if at most its raw pixels
    data = held.getvalue() if isinstance(held, io.BytesIO) else _whole_file(path, w * h * 3)
    if data is None or not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None  # OpenCV would fill a truncated page in grey where Pillow refuses it
    read = JPEG_READ[img.mode][scale] | cv2.IMREAD_IGNORE_ORIENTATION
    shape = (img.height, img.width) if img.mode == "L" else (img.height, img.width, 3)
    return _opencv_decode(data, read, shape)


def _whole_file(path: Path, raw_bytes: int) -> bytes | None:
    """The file's bytes, unless it holds more than ``raw_bytes`` (its page's raw pixels) and 1 MiB:
    such a file is left to Pillow's decoder, which reads it a block at a time."""
    if path.stat().st_size > raw_bytes + 2**20:
        return None
    return path.read_bytes()


def _opencv_decode(data: bytes, flags: int, shape: tuple[int, ...]) -> np.ndarray | None:
    """``data`` decoded by OpenCV with ``flags``; None unless it gives uint8 pixels of ``shape``."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if pixels is None or pixels.dtype != np.uint8 or pixels.shape != shape:
        return None
    return pixels


def decode_again(
    path: Path, number: int, need: Callable[[int, int], tuple[int, int]], limits: DecodeLimits
) -> DecodedRaster:
    """Page ``number`` decoded anew at another scale (a preview larger than the model's decode)."""
    for found, img in raster_frames(path, limits):
        if found == number:
            return reduced_page(path, img, number, need, limits)
    raise UnreadableImage(path, f"page {number} is gone (the file changed while it was read)")


def jpeg_stream(
    path: Path,
    stream: bytes,
    number: int,
    need: Callable[[int, int], tuple[int, int]],
    preview: Callable[[int, int], tuple[int, int] | None],
    limits: DecodeLimits,
) -> tuple[DecodedRaster, np.ndarray | None] | None:
    """A PDF page's embedded JPEG (``stream``) decoded as a JPEG file's page is, through DCT scaling,
    drawn as stored (no EXIF turn, as PDFium draws it), with a second decode at the ``preview``'s scale
    when that is larger; None when it is not a grey or RGB JPEG this decoder reads within the limits
    (the page is then rendered: PDFium draws what it can of a broken stream, and says why it cannot)."""
    try:
        raster = _stream_page(path, stream, number, need, limits)
        if raster is None:
            return None
        wanted = preview(*raster.size)
        if serves(raster.decoded_size, wanted):
            return raster, None
        again = _stream_page(path, stream, number, lambda w, h: preview(w, h) or (w, h), limits)
        return (raster, again.pixels) if again is not None else None
    except TIME_UP:
        raise
    except Exception:  # any fault of the stream: PDFium renders the page instead
        return None


def _stream_page(
    path: Path, stream: bytes, number: int, need: Callable[[int, int], tuple[int, int]], limits: DecodeLimits
) -> DecodedRaster | None:
    with Image.open(io.BytesIO(stream), formats=["JPEG"]) as img:
        if img.mode not in JPEG_MODES:
            return None
        check_pixels(path, img, limits)
        return reduced_page(path, img, number, need, limits, orientation=1)
