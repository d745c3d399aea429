"""Some frames of a multi-page TIFF as a new multi-page TIFF, copied at the tag level: nothing decoded.

Each chosen frame's encoded strips or tiles are copied byte for byte, and so is every tag of its
directory (compression, photometric, bits per sample, rows per strip, predictor, JPEG tables,
resolution, colour map, ICC profile, orientation ...), with the source's byte order and flavour
(classic or BigTIFF). Only what points into the source file is changed or left out:

- the strip or tile offsets are those of the copies; their byte counts are written again;
- ``PageNumber`` says the frame's place in the new file;
- pointers to other directories (EXIF, GPS and interoperability IFDs, sub-IFDs such as thumbnails,
  free-space lists) are left out: they describe no pixel of the frame.

A frame in old-style JPEG (compression 6) points at its JPEG stream through tags of its own; it is
not copied here (:data:`OLD_JPEG`; the caller decides).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import tifffile

from schema.errors import DocsortError

OLD_JPEG = 6
STRIP_OFFSETS, STRIP_BYTE_COUNTS, TILE_OFFSETS, TILE_BYTE_COUNTS = 273, 279, 324, 325
PAGE_NUMBER = 297
POINTERS = {288, 289, 330, 400, 513, 514, 34665, 34853, 40965}  # free lists, sub-IFDs, EXIF/GPS/interop
# bytes per value of each TIFF field type: BYTE 1, ASCII 2, SHORT 3, LONG 4, RATIONAL 5, SBYTE 6,
# UNDEFINED 7, SSHORT 8, SLONG 9, SRATIONAL 10, FLOAT 11, DOUBLE 12, IFD 13; BigTIFF's LONG8 16,
# SLONG8 17, IFD8 18
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
TYPE_SIZES |= {16: 8, 17: 8, 18: 8}
SHORT, LONG, LONG8 = 3, 4, 16
CLASSIC_LIMIT = 1 << 32


class TiffCopyError(DocsortError):
    """The frames cannot be copied; ``reason`` is meant for a person."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class OldJpegFrame(TiffCopyError):
    """A chosen frame is in old-style JPEG; found before anything is written."""


@dataclass(frozen=True)
class Layout:
    """Byte order and flavour of the file written: the source's."""

    order: str  # "<" or ">"
    big: bool

    @property
    def word(self) -> str:
        return "Q" if self.big else "I"

    @property
    def inline(self) -> int:
        return 8 if self.big else 4

    def header(self) -> bytes:
        mark = b"II" if self.order == "<" else b"MM"
        if self.big:
            return mark + struct.pack(self.order + "HHHQ", 43, 8, 0, 0)
        return mark + struct.pack(self.order + "HI", 42, 0)

    def first_link(self) -> int:
        """Where the header holds the offset of the first directory."""
        return 8 if self.big else 4

    def pack(self, fmt: str, *values: int) -> bytes:
        return struct.pack(self.order + fmt, *values)


@dataclass(frozen=True)
class Entry:
    code: int
    dtype: int
    count: int
    value: bytes  # raw, in the file's byte order


def tiff_frame_count(source: Path) -> int:
    """The number of frames in the file's chain of directories (its pages)."""
    with tifffile.TiffFile(source) as tif:
        return len(tif.pages)


def copy_tiff_frames(source: Path, numbers: list[int], target: Path) -> None:
    """Write the frames ``numbers`` (1-based, in this order) of ``source`` to ``target`` as a multi-page
    TIFF. Raises :class:`OldJpegFrame` before writing when a frame is in old-style JPEG, and
    :class:`TiffCopyError` for a frame that cannot be copied (no data, truncated, over the 4 GiB of a
    classic TIFF)."""
    with tifffile.TiffFile(source) as tif, open(source, "rb") as src:
        pages = [_page(tif, number) for number in numbers]
        old = [n for n, page in zip(numbers, pages, strict=True) if int(page.compression) == OLD_JPEG]
        if old:
            raise OldJpegFrame(f"frame {old[0]} is in old-style JPEG (compression 6)")
        with open(target, "wb") as out:
            _write_frames(tif, src, out, list(zip(numbers, pages, strict=True)))


def _write_frames(
    tif: tifffile.TiffFile, src: BinaryIO, out: BinaryIO, frames: list[tuple[int, tifffile.TiffPage]]
) -> None:
    layout = Layout(order=tif.byteorder, big=tif.is_bigtiff)
    out.write(layout.header())
    link = layout.first_link()
    for index, (number, page) in enumerate(frames):
        offsets = [_copy_range(src, out, offset, size) for offset, size in _segments(page, number)]
        entries = _entries(page, src, layout, offsets, (index, len(frames)))
        ifd = _write_ifd(out, layout, entries)
        _patch(out, layout, link, ifd)
        link = ifd + (8 if layout.big else 2) + len(entries) * (20 if layout.big else 12)
    if not layout.big and out.tell() >= CLASSIC_LIMIT:
        raise TiffCopyError("the frames exceed the 4 GiB of a classic TIFF")


def _page(tif: tifffile.TiffFile, number: int) -> tifffile.TiffPage:
    page = tif.pages[number - 1]
    if not isinstance(page, tifffile.TiffPage):  # a TiffFrame: only when frames are asked for
        page = page.aspage()
    return page


def _segments(page: tifffile.TiffPage, number: int) -> list[tuple[int, int]]:
    segments = list(zip(page.dataoffsets, page.databytecounts, strict=True))
    if not segments:
        raise TiffCopyError(f"frame {number} has no image data")
    return segments


def _copy_range(src: BinaryIO, out: BinaryIO, offset: int, size: int) -> int:
    """Copy ``size`` bytes at ``offset`` of ``src`` to the end of ``out``; where they now start.
    An empty segment (a sparse strip) stays empty at offset 0."""
    if size == 0:
        return 0
    _align(out)
    start = out.tell()
    src.seek(offset)
    copied = _copy_exact(src, out, size)
    if copied != size:
        raise TiffCopyError(f"truncated file: a strip at byte {offset} ends after {copied} of {size} bytes")
    return start


def _copy_exact(src: BinaryIO, out: BinaryIO, size: int) -> int:
    copied = 0
    while copied < size:
        block = src.read(min(size - copied, 1 << 20))
        if not block:
            break
        out.write(block)
        copied += len(block)
    return copied


def _entries(
    page: tifffile.TiffPage, src: BinaryIO, layout: Layout, offsets: list[int], place: tuple[int, int]
) -> list[Entry]:
    """The directory of the copied frame: the source's tags, raw, with offsets and page number new."""
    counts = [int(n) for n in page.databytecounts]
    tiled = TILE_OFFSETS in page.tags
    where, sizes = (TILE_OFFSETS, TILE_BYTE_COUNTS) if tiled else (STRIP_OFFSETS, STRIP_BYTE_COUNTS)
    kind = LONG8 if layout.big else LONG
    fmt = "Q" if layout.big else "I"
    entries = [
        Entry(where, kind, len(offsets), layout.pack(f"{len(offsets)}{fmt}", *offsets)),
        Entry(sizes, kind, len(counts), layout.pack(f"{len(counts)}{fmt}", *counts)),
    ]
    rewritten = {STRIP_OFFSETS, STRIP_BYTE_COUNTS, TILE_OFFSETS, TILE_BYTE_COUNTS, PAGE_NUMBER}
    for tag in page.tags.values():
        if tag.code in rewritten or tag.code in POINTERS or tag.dtype not in TYPE_SIZES:
            continue
        size = TYPE_SIZES[tag.dtype] * tag.count
        src.seek(tag.valueoffset)
        raw = src.read(size)
        if len(raw) != size:
            raise TiffCopyError(f"truncated file: tag {tag.code} ends past the end of the file")
        entries.append(Entry(tag.code, int(tag.dtype), tag.count, raw))
    if PAGE_NUMBER in page.tags:
        entries.append(Entry(PAGE_NUMBER, SHORT, 2, layout.pack("2H", *place)))
    return sorted(entries, key=lambda e: e.code)


def _write_ifd(out: BinaryIO, layout: Layout, entries: list[Entry]) -> int:
    """Write the entries' long values, then the directory (its next-directory link 0); its offset."""
    placed: list[bytes] = []
    for entry in entries:
        if len(entry.value) <= layout.inline:
            placed.append(entry.value.ljust(layout.inline, b"\0"))
            continue
        _align(out)
        placed.append(layout.pack(layout.word, out.tell()))
        out.write(entry.value)
    _align(out)
    start = out.tell()
    count_fmt = "Q" if layout.big else "H"
    out.write(layout.pack(count_fmt, len(entries)))
    for entry, value in zip(entries, placed, strict=True):
        out.write(layout.pack("HH" + layout.word, entry.code, entry.dtype, entry.count) + value)
    out.write(layout.pack(layout.word, 0))
    return start


def _patch(out: BinaryIO, layout: Layout, at: int, value: int) -> None:
    end = out.tell()
    out.seek(at)
    out.write(layout.pack(layout.word, value))
    out.seek(end)


def _align(out: BinaryIO) -> None:
    """TIFF offsets fall on a word (even) boundary."""
    if out.tell() % 2:
        out.write(b"\0")
