"""An output document written as one file, from its source file, without loss.

A document is a list of 1-based page numbers of one source file (in the order they are to appear;
separator pages already left out). :func:`write_document` writes it, atomically, the closest to the
source that its format allows:

- **every page of the source, in order**: the source itself, byte for byte, whatever its format;
- **pages of a PDF**: a PDF whose pages are the source's page objects, copied with pikepdf (content
  streams, images, fonts, annotations, page boxes and rotation, including those a page inherits from
  the page tree), nothing rendered and no stream decoded; the catalogue's optional-content
  properties come along, so layers show as they do in the source;
- **frames of a multi-page TIFF**: a multi-page TIFF of the same frames, their encoded strips or tiles
  and their tags copied as they are (:mod:`worker.document_tiff`): G4 stays G4, JPEG stays JPEG with
  its tables, LZW keeps its predictor, and the resolution is kept;
- **frames of another multi-frame image** (GIF, WebP, animated PNG), and TIFF frames in old-style
  JPEG, which no reader writes back: these have no container that keeps some encoded frames as
  pages, so the frames are decoded (as the worker decodes them, EXIF orientation applied) and
  written into a multi-page TIFF with lossless compression (G4 when every frame is bilevel, Deflate
  otherwise). Their pixels are the decoded pixels; their bytes are new.

:func:`document_suffix` gives the suffix the target's name should carry for that format. Bad input
(an unreadable source, no pages, a page out of range or listed twice, a file that does not hold the
pages the caller counted) raises :class:`DocumentFileError` naming the file and the reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pikepdf
from PIL import Image, ImageOps

from schema.errors import DocsortError
from schema.files import write_atomic
from worker.document_tiff import OldJpegFrame, TiffCopyError, copy_tiff_frames, tiff_frame_count
from worker.imaging import UnreadableImage, media_type_of

PDF, TIFF = "application/pdf", "image/tiff"
SUFFIXES = {
    "application/pdf": ".pdf",
    "image/tiff": ".tif",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/bmp": ".bmp",
    "image/gif": ".gif",
    "image/webp": ".webp",
}
TIFF_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I;16B", "I", "F", "YCbCr", "LAB"}


class DocumentFileError(DocsortError):
    """An output document cannot be written from its source. ``path`` is the file at fault (the source,
    or the target when it cannot be written); ``reason`` is meant for a person."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def is_whole_file(pages: Sequence[int], page_count: int) -> bool:
    """True when the document is every page of its source, in order: it is delivered as the file."""
    return list(pages) == list(range(1, page_count + 1))


def document_suffix(source: Path, pages: Sequence[int], page_count: int) -> str:
    """The suffix (``.pdf``, ``.tif``, or the source's own for a whole file) of the file that
    :func:`write_document` writes for these pages. Reads the source's first bytes only."""
    check_pages(source, pages, page_count)
    if is_whole_file(pages, page_count):
        own = source.suffix.lower()
        return own if own else SUFFIXES[_media_type(source)]
    return ".pdf" if _media_type(source) == PDF else ".tif"


def write_document(source: Path, pages: Sequence[int], target: Path, *, page_count: int) -> Path:
    """Write the document of ``pages`` (1-based, in this order) of ``source``, a file of ``page_count``
    pages, to ``target`` atomically (see the module's description for each format); ``target``.
    Name ``target`` with :func:`document_suffix`."""
    source, target = Path(source), Path(target)
    numbers = check_pages(source, pages, page_count)
    if is_whole_file(numbers, page_count):
        return _write(target, source, lambda tmp: shutil.copyfile(source, tmp))
    media = _media_type(source)
    if media == PDF:
        return _write(target, source, lambda tmp: _write_pdf(source, numbers, page_count, tmp))
    if media == TIFF:
        return _write(target, source, lambda tmp: _write_tiff(source, numbers, page_count, tmp))
    return _write(target, source, lambda tmp: _write_decoded(source, numbers, page_count, tmp))


def check_pages(source: Path, pages: Sequence[int], page_count: int) -> list[int]:
    """The page numbers as a list, or :class:`DocumentFileError` for none, one out of range, or a
    page listed twice."""
    numbers = list(pages)
    if page_count < 1:
        raise DocumentFileError(source, f"a file of {page_count} pages has no document")
    if not numbers:
        raise DocumentFileError(source, "the document has no pages (empty page list)")
    seen: set[int] = set()
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= page_count:
            raise DocumentFileError(
                source, f"page {number!r} is out of range (the file has pages 1 to {page_count})"
            )
        if number in seen:
            raise DocumentFileError(source, f"page {number} is listed twice")
        seen.add(number)
    return numbers


def _media_type(source: Path) -> str:
    try:
        return media_type_of(source)
    except UnreadableImage as exc:
        raise DocumentFileError(source, exc.reason) from exc


def _write(target: Path, source: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` under :func:`write_atomic`; errors become :class:`DocumentFileError`, naming the
    source for what cannot be read and the target for what cannot be written."""
    try:
        return write_atomic(target, write)
    except DocumentFileError:
        raise
    except OSError as exc:
        if exc.filename is not None and str(exc.filename) == str(source):
            reason = "file not found" if isinstance(exc, FileNotFoundError) else "cannot be read"
            raise DocumentFileError(source, f"{reason} ({exc.strerror or exc})") from exc
        raise DocumentFileError(target, f"cannot be written ({exc.strerror or exc})") from exc


def _check_count(source: Path, found: int, page_count: int) -> None:
    if found != page_count:
        raise DocumentFileError(source, f"the file has {found} pages, not the {page_count} counted")


def _write_pdf(source: Path, numbers: list[int], page_count: int, tmp: Path) -> None:
    """The source's page objects, copied into a new PDF (saved while the source is open: qpdf copies
    stream data from it when saving). A file qpdf has to repair is refused: what the repair could not
    recover (a stream, an object) would be missing from the copy without a word."""
    try:
        with pikepdf.open(source) as src:
            _refuse_damage(source, src)
            _check_count(source, len(src.pages), page_count)
            out = pikepdf.new()
            for number in numbers:
                out.pages.append(src.pages[number - 1])
            if "/OCProperties" in src.Root:
                out.Root.OCProperties = out.copy_foreign(src.Root.OCProperties)
            out.save(
                tmp,
                min_version=src.pdf_version,
                stream_decode_level=pikepdf.StreamDecodeLevel.none,
                deterministic_id=True,
            )
            _refuse_damage(source, src)
    except pikepdf.PasswordError as exc:
        raise DocumentFileError(source, "encrypted PDF (a password is needed)") from exc
    except pikepdf.PdfError as exc:
        raise DocumentFileError(source, f"corrupt PDF ({exc})") from exc


def _refuse_damage(source: Path, pdf: pikepdf.Pdf) -> None:
    warnings = pdf.get_warnings()
    if warnings:
        first = str(warnings[0]).replace(str(source), "").lstrip(": ").strip()
        raise DocumentFileError(source, f"damaged PDF ({first}); its pages are not copied from a repair")


def _write_tiff(source: Path, numbers: list[int], page_count: int, tmp: Path) -> None:
    """The frames copied at the tag level; decoded only when a frame is in old-style JPEG."""
    try:
        found = tiff_frame_count(source)
        if found == 0:
            raise DocumentFileError(source, "corrupt TIFF (no frame can be read)")
        _check_count(source, found, page_count)
        copy_tiff_frames(source, numbers, tmp)
    except OldJpegFrame:
        _write_decoded(source, numbers, page_count, tmp)
    except TiffCopyError as exc:
        raise DocumentFileError(source, exc.reason) from exc
    except (DocumentFileError, OSError):
        raise
    except Exception as exc:  # tifffile raises many types on a hostile file; each becomes a reason
        raise DocumentFileError(source, f"corrupt TIFF ({type(exc).__name__}: {exc})") from exc


def _write_decoded(source: Path, numbers: list[int], page_count: int, tmp: Path) -> None:
    """The frames decoded and saved as a multi-page TIFF, losslessly (see the module's description)."""
    try:
        with Image.open(source) as img:
            _check_count(source, getattr(img, "n_frames", 1), page_count)
            frames = []
            for number in numbers:
                img.seek(number - 1)
                frames.append(_storable(ImageOps.exif_transpose(img)))
            dpi = img.info.get("dpi")
    except DocumentFileError:
        raise
    except Exception as exc:  # decoders raise many types on hostile input; each becomes a reason
        raise DocumentFileError(source, f"cannot be decoded ({type(exc).__name__}: {exc})") from exc
    bilevel = all(frame.mode == "1" for frame in frames)
    options: dict[str, object] = {"compression": "group4" if bilevel else "tiff_adobe_deflate"}
    if dpi:
        options["dpi"] = dpi
    frames[0].save(tmp, format="TIFF", save_all=True, append_images=frames[1:], **options)


def _storable(frame: Image.Image) -> Image.Image:
    """The frame in a mode TIFF stores as it is; other modes (PA, La, RGBa ...) go to RGB(A)."""
    if frame.mode in TIFF_MODES:
        return frame
    return frame.convert("RGBA" if "A" in frame.mode or "a" in frame.mode else "RGB")
