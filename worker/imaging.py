"""Page decoding: the one implementation that training and serving share.

``prepare_pages(path, spec, preview_side=...)`` yields each page of a file (JPEG, PNG, TIFF incl.
multi-page/G4/16-bit, BMP, WebP, GIF, PDF) as a :class:`PreparedPage`: its own size, the model's input
(uint8 HxWx3, letterbox or stretch) and optionally a preview (grey for a grey page). Each page is
decoded once at the smallest scale that serves the model: a JPEG through DCT scaling (1/8 to 1/2); a PDF
page that is one upright JPEG filling the page (what a scanner writes) the same way, from the JPEG stream
the render process hands out (``worker.pdfchild``), any other PDF page rendered at that scale in that bounded
process; any other raster whole in its own mode (grey stays 1 byte a pixel) and area-resized (a large
reduction with Pillow's box filter, ``worker.pixels.BOX_RATIO``). The preview comes from the same decode
when that decode is large enough for it (always for PNG, TIFF, BMP, WebP, GIF); a JPEG or PDF page decoded
small for the model is decoded a second time at the preview's scale, because the model input must be one
function of the file and the input spec, the same whether a preview was asked or not (the trainer asks for
none). With a ``keep`` (:mod:`worker.kept`), a page whose decode is large enough for a review preview keeps
its pixels reduced for one, made later if the page goes to review; ``preview_pages`` makes previews of
chosen pages alone (review pages found after inference that kept none). Pages
come one at a time; a file is never held whole. ``load_model_inputs`` is the trainer's way to the same
model inputs. Pixel normalisation lives in the exported graph. Every decode holds :class:`DecodeLimits`.

How far this is from decoding the page whole and resizing it (``iter_pages`` then ``to_model_input``):
colour PNG, TIFF, BMP, WebP and GIF pages give exactly the same model input (they are decoded whole; only
the RGB copy at full size is skipped); grey and bilevel ones are kept grey and reduced with Pillow's box
filter (``worker.pixels.BOX_RATIO``), 0.03-0.7 grey levels from the RGB page's area resize. A JPEG page, a
PDF page's JPEG or a rendered PDF page is decoded at no less than ``OVERSAMPLE`` (2) times the model's
input along each side, so the last area resize still averages whole neighbourhoods; DCT scaling and
PDFium's own downsampling weigh pixels a little differently from an area resize of the whole page. The
mean absolute difference of the model input stays within :data:`TOLERANCE` grey levels (of 0-255) on A4
scans at 300 dpi (tests/worker/test_decode_reduced.py and test_decode_direct.py measure it per format and
model size: 0.03-1.1 measured); single pixels on sharp edges may differ by more.

``iter_pages`` still decodes every page whole as RGB (PDFs at 150 dpi), for code that needs the page
itself; it holds the same limits.
"""

from __future__ import annotations

import ctypes
import warnings
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from worker.kept import KeptPixels, PreviewKeep
from worker.limits import DEFAULT_LIMITS, PDF_DPI, DecodeLimits
from worker.pdfchild import POINTS_PER_INCH, PageGeometry
from worker.pdfrender import DirectDecode, close_renderers, pdf_pages
from worker.pixels import (
    TIME_UP,
    ModelInputSpec,
    PageTarget,
    ResizePolicy,
    UnreadableImage,
    decode_failure,
    model_input,
    preview_of,
    resize_array,
    serves,
    to_rgb,
)
from worker.rasters import decode_again, full_page, jpeg_stream, raster_frames, reduced_page

__all__ = [
    "EXTENSIONS",
    "TOLERANCE",
    "DecodeLimits",
    "DecodedPage",
    "PageTarget",
    "PreparedPage",
    "PreviewKeep",
    "ResizePolicy",
    "UnreadableImage",
    "close_renderers",
    "decode_pages",
    "iter_pages",
    "load_model_inputs",
    "media_type_of",
    "prepare_pages",
    "preview_pages",
    "resize_array",
    "sniff_media_type",
    "to_model_input",
    "to_rgb",
]

T = TypeVar("T")
TOLERANCE = 2.0  # mean absolute difference, grey levels, reduced decode vs whole decode + resize
SUPPORTED = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),  # classic and BigTIFF
    "image/bmp": (b"BM",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
}
EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".pdf"}

# The pixel limit (checked before decoding) is the one that counts; Pillow still raises
# DecompressionBombError above twice its own warning level, reported as a decompression bomb as well.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass(frozen=True)
class DecodedPage:
    number: int  # 1-based
    image: Image.Image  # RGB, the whole page


@dataclass
class PreparedPage:
    """One page as the model and the review page need it; the page itself is not kept."""

    number: int  # 1-based
    width: int  # the page's own size, pixels at its scan resolution (oriented)
    height: int
    model_input: np.ndarray  # uint8 HxWx3 (blank when ``error``)
    preview: Image.Image | None = None  # "L" (grey page) or "RGB", longest side at most the side asked for
    error: str | None = None  # why this page could not be decoded (asked for with ``page_errors``)
    kept: KeptPixels | None = None  # for a review preview made later (asked for with ``keep``)


def sniff_media_type(head: bytes) -> str | None:
    """The media type from the file's first bytes (the extension is not trusted)."""
    for media, magics in SUPPORTED.items():
        if any(head.startswith(m) for m in magics):
            return media
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def media_type_of(path: Path) -> str:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except FileNotFoundError as exc:
        raise UnreadableImage(path, "file not found") from exc
    except OSError as exc:
        raise UnreadableImage(path, f"cannot be opened ({exc.strerror or exc})") from exc
    if not head:
        raise UnreadableImage(path, "empty file (0 bytes)")
    media = sniff_media_type(head)
    if media is None:
        raise UnreadableImage(
            path, "unsupported file type (not JPEG, PNG, TIFF, BMP, WebP, GIF or PDF by its content)"
        )
    return media


def _limits(limits: DecodeLimits | None, max_pixels: int | None, max_pages: int | None) -> DecodeLimits:
    bounds = limits or DEFAULT_LIMITS
    if max_pixels is not None:
        bounds = replace(bounds, max_page_pixels=max_pixels)
    if max_pages is not None:
        bounds = replace(bounds, max_pages=max_pages)
    return bounds


def _guarded(path: Path, pages: Iterator[T]) -> Iterator[T]:
    """Every decoder exception as an UnreadableImage naming the file; freed memory returned after it."""
    try:
        yield from pages
    except (UnreadableImage, *TIME_UP):
        raise
    except Exception as exc:  # decoders raise many types on hostile input; each becomes a reason
        raise decode_failure(path, exc) from exc
    finally:
        release_freed_memory()


# Free heap a process may keep between files before it is handed back: below it, the next page reuses the
# freed buffers (handing them back makes the next decode fault them in afresh: 20 % of a decode with a
# 1600-px preview); above it (a giant page, a file of hundreds of pages) the memory goes back at once.
KEEP_FREED_BYTES = 32 * 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")
    ]  # fmt: skip


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018  (glibc only)
        libc.mallinfo2.restype = _MallInfo2  # glibc 2.33 and later
    except (OSError, AttributeError):
        return None
    return libc


def release_freed_memory(keep: int = KEEP_FREED_BYTES) -> None:
    """Hand freed page buffers back to the system once more than ``keep`` bytes of them are held (glibc
    keeps them otherwise: a file of hundreds of pages would leave the process hundreds of MB larger).
    No-op elsewhere."""
    libc = _libc()
    if libc is not None and int(libc.mallinfo2().fordblks) > keep:  # free heap bytes still held
        libc.malloc_trim(0)


def _prepared(
    number: int,
    size: tuple[int, int],
    pixels: np.ndarray,
    target: PageTarget,
    orientation: int = 1,
    preview_pixels: np.ndarray | None = None,
    keep: PreviewKeep | None = None,
) -> PreparedPage:
    preview_size = target.preview_size(*size)
    source = pixels if preview_pixels is None else preview_pixels  # the largest decode of this page
    preview = None if preview_size is None else preview_of(source, preview_size, orientation)
    kept = None if keep is None else keep.take(source, size, orientation)
    inputs = model_input(pixels, target, size, orientation)
    return PreparedPage(number, size[0], size[1], inputs, preview, kept=kept)


def _pdf_scale(need: Callable[[int, int], tuple[int, int] | None]) -> Callable[[PageGeometry], float]:
    def scale_for(geometry: PageGeometry) -> float:
        wanted = need(*geometry.pixels)
        if wanted is None:
            return 0.0
        return max(wanted[0] / geometry.points[0], wanted[1] / geometry.points[1])

    return scale_for


def _at_least(
    size_for: Callable[[int, int], tuple[int, int] | None],
) -> Callable[[int, int], tuple[int, int]]:
    return lambda w, h: size_for(w, h) or (w, h)


def _direct_jpeg(
    path: Path,
    need: Callable[[int, int], tuple[int, int]],
    preview: Callable[[int, int], tuple[int, int] | None],
    limits: DecodeLimits,
) -> DirectDecode:
    """A PDF page that is one scanned JPEG, decoded as a JPEG file is (``worker.rasters.jpeg_stream``):
    at the DCT scale that serves ``need`` (and again at ``preview``'s when that one is larger)."""

    def decode(stream: bytes, geometry: PageGeometry) -> tuple[np.ndarray, np.ndarray | None] | None:
        found = jpeg_stream(path, stream, 0, need, preview, limits)
        return None if found is None else (found[0].pixels, found[1])

    return decode


def _failed(number: int, size: tuple[int, int], target: PageTarget, reason: str) -> PreparedPage:
    blank = np.full((target.height, target.width, 3), target.pad_value, np.uint8)
    return PreparedPage(number, size[0], size[1], blank, None, reason)


def _prepare(
    path: Path,
    target: PageTarget,
    limits: DecodeLimits,
    page_errors: bool = False,
    keep: PreviewKeep | None = None,
) -> Iterator[PreparedPage]:
    """The model's decode of each page; a preview that it cannot serve (a JPEG or PDF page decoded
    small for the model) comes from a second decode of that page at the preview's scale. ``keep``
    keeps reduced pixels of the pages decoded large enough for its preview (never decodes again)."""
    if media_type_of(path) == "application/pdf":
        preview_scale = _pdf_scale(target.preview_size) if target.preview_side else None
        direct = _direct_jpeg(path, target.needed, target.preview_size, limits)
        for page in pdf_pages(
            path, limits, _pdf_scale(target.needed), preview_scale, page_errors=page_errors, direct=direct
        ):
            if page.error is not None:
                yield _failed(page.number, page.geometry.pixels, target, f"page {page.number}: {page.error}")
                continue
            yield _prepared(page.number, page.geometry.pixels, page.rgb, target, 1, page.preview, keep)
        return
    for number, img in raster_frames(path, limits):
        try:
            raster = reduced_page(path, img, number, target.needed, limits)
            wanted = target.preview_size(*raster.size)
            again = None
            if not serves(raster.decoded_size, wanted):
                again = decode_again(path, number, _at_least(target.preview_size), limits).pixels
        except TIME_UP:
            raise
        except Exception as exc:  # this page only: the next frames may still decode
            if not page_errors:
                raise
            reason = exc.reason if isinstance(exc, UnreadableImage) else decode_failure(path, exc).reason
            yield _failed(number, img.size, target, f"page {number}: {reason}")
            continue
        yield _prepared(number, raster.size, raster.pixels, target, raster.orientation, again, keep)


def prepare_pages(
    path: Path | str,
    spec: ModelInputSpec | PageTarget,
    *,
    preview_side: int | None = None,
    limits: DecodeLimits | None = None,
    page_errors: bool = False,
    keep: PreviewKeep | None = None,
) -> Iterator[PreparedPage]:
    """Each page of a file, decoded once, as the model's input for ``spec`` (an InputSpec) and, with
    ``preview_side``, a preview of that longest side (grey for a grey page); with ``keep``, the pixels
    of a preview made later where this decode holds them (:mod:`worker.kept`); raise
    :class:`UnreadableImage` naming the file and the reason (a broken file, or a page over one of
    ``limits``). Neither changes the model input."""
    path = Path(path)
    target = spec if isinstance(spec, PageTarget) else PageTarget.of(spec, preview_side)
    yield from _guarded(path, _prepare(path, target, limits or DEFAULT_LIMITS, page_errors, keep))


def preview_pages(
    path: Path | str, numbers: set[int], side: int, *, limits: DecodeLimits | None = None
) -> Iterator[tuple[int, Image.Image]]:
    """(page number, preview of longest side ``side``: grey for a grey or bilevel page, else RGB) for the
    pages ``numbers`` of a file, each decoded at the preview's scale, one at a time (for review pages
    found after inference)."""
    path = Path(path)
    target = PageTarget(1, 1, preview_side=side)
    bounds = limits or DEFAULT_LIMITS
    yield from _guarded(path, _previews(path, set(numbers), target, bounds))


def _previews(
    path: Path, numbers: set[int], target: PageTarget, limits: DecodeLimits
) -> Iterator[tuple[int, Image.Image]]:
    if not numbers:
        return
    wanted = _at_least(target.preview_size)
    found: Iterator[tuple[int, tuple[int, int], np.ndarray, int]]
    source: Generator[Any, None, None]
    if media_type_of(path) == "application/pdf":
        direct = _direct_jpeg(path, wanted, lambda w, h: None, limits)
        source = pdf_pages(path, limits, _pdf_scale(wanted), only=numbers, direct=direct)
        found = ((p.number, p.geometry.pixels, p.rgb, 1) for p in source)
    else:
        source = raster_frames(path, limits)
        rasters = ((n, reduced_page(path, img, n, wanted, limits)) for n, img in source if n in numbers)
        found = ((n, r.size, r.pixels, r.orientation) for n, r in rasters)
    with closing(source):  # stopping early hands the file (and a PDF's render process) back at once
        left = len(numbers)
        for number, size, pixels, orientation in found:
            yield number, preview_of(pixels, wanted(*size), orientation)
            left -= 1
            if not left:
                return


def load_model_inputs(
    path: Path | str,
    size: tuple[int, int],
    policy: ResizePolicy = "letterbox",
    pad_value: int = 255,
    limits: DecodeLimits | None = None,
) -> list[np.ndarray]:
    """Every page of a file as model inputs: :func:`prepare_pages`, the path that the worker takes."""
    target = PageTarget(size[0], size[1], policy, pad_value)
    return [page.model_input for page in prepare_pages(path, target, limits=limits)]


def _whole(path: Path, pdf_dpi: int, limits: DecodeLimits) -> Iterator[DecodedPage]:
    if media_type_of(path) == "application/pdf":
        for page in pdf_pages(path, limits, lambda _: pdf_dpi / POINTS_PER_INCH):
            yield DecodedPage(page.number, Image.fromarray(page.rgb, "RGB"))
        return
    for number, img in raster_frames(path, limits):
        yield DecodedPage(number, full_page(path, img, number, limits))


def iter_pages(
    path: Path | str,
    *,
    max_pixels: int | None = None,
    pdf_dpi: int = PDF_DPI,
    max_pages: int | None = None,
    limits: DecodeLimits | None = None,
) -> Iterator[DecodedPage]:
    """Yield each page of a file whole as RGB, one at a time; raise :class:`UnreadableImage` naming the
    reason. ``max_pixels`` and ``max_pages`` override those of ``limits``."""
    path = Path(path)
    bounds = _limits(limits, max_pixels, max_pages)
    yield from _guarded(path, _whole(path, pdf_dpi, bounds))


def decode_pages(path: Path | str, **kwargs: int) -> list[DecodedPage]:
    return list(iter_pages(path, **kwargs))  # type: ignore[arg-type]


def to_model_input(
    page: Image.Image, size: tuple[int, int], policy: ResizePolicy = "letterbox", pad_value: int = 255
) -> np.ndarray:
    """One whole page as the model's uint8 HxWx3 input."""
    return resize_array(np.asarray(to_rgb(page), dtype=np.uint8), size, policy, pad_value)
