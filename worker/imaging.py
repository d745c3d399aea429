"""Page decoding: the one implementation that training and serving share.

``prepare_pages(path, spec, preview_side=...)`` yields each page of a file (JPEG, PNG, TIFF incl.
multi-page/G4/16-bit, BMP, WebP, GIF, PDF) as a :class:`PreparedPage`: its own size, the model's input
(uint8 HxWx3, letterbox or stretch) and optionally a preview, from ONE decode at the smallest scale that
serves both (JPEG through DCT scaling, PDF pages rendered at the scale needed in a bounded process,
other rasters shrunk early in their own mode). Pages come one at a time; a file is never held whole.
``load_model_inputs`` is the same path for the trainer. Pixel normalisation lives in the exported graph.

How far the reduced decode is from decoding the page whole and resizing it (``iter_pages`` then
``to_model_input``): a page is decoded at no less than ``OVERSAMPLE`` (2) times the model's input along
each side, so the last resize still averages whole neighbourhoods; DCT scaling, box reduction and
PDFium's own downsampling differ from an area resize of the whole page only in how they weigh pixels
at box edges. The mean absolute difference of the model input stays within :data:`TOLERANCE` grey
levels (of 0-255) on A4 scans at 300 dpi (tests/worker/test_decode_reduced.py measures it per format);
single pixels on sharp edges may differ by more. Pages that need no reduction give the same pixels.

``iter_pages`` still decodes every page whole as RGB (PDFs at 150 dpi), for code that needs the page
itself; it holds the same limits.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from worker.limits import DEFAULT_LIMITS, PDF_DPI, DecodeLimits
from worker.pdfchild import POINTS_PER_INCH, PageGeometry
from worker.pdfrender import close_renderers, pdf_pages
from worker.pixels import (
    ModelInputSpec,
    PageTarget,
    ResizePolicy,
    UnreadableImage,
    decode_failure,
    model_input,
    preview_of,
    resize_array,
    to_rgb,
)
from worker.rasters import full_page, raster_frames, reduced_page

__all__ = [
    "EXTENSIONS",
    "TOLERANCE",
    "DecodeLimits",
    "DecodedPage",
    "PageTarget",
    "PreparedPage",
    "ResizePolicy",
    "UnreadableImage",
    "close_renderers",
    "decode_pages",
    "iter_pages",
    "load_model_inputs",
    "media_type_of",
    "prepare_pages",
    "resize_array",
    "sniff_media_type",
    "to_model_input",
    "to_rgb",
]

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
    model_input: np.ndarray  # uint8 HxWx3
    preview: Image.Image | None = None  # RGB, longest side at most the preview side asked for


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


def _guarded(path: Path, pages: Iterator[PreparedPage] | Iterator[DecodedPage]):
    """Every decoder exception as an UnreadableImage naming the file."""
    try:
        yield from pages
    except UnreadableImage:
        raise
    except Exception as exc:  # decoders raise many types on hostile input; each becomes a reason
        raise decode_failure(path, exc) from exc


def _prepared(
    number: int, size: tuple[int, int], pixels: np.ndarray, target: PageTarget, orientation: int = 1
) -> PreparedPage:
    preview_size = target.preview_size(*size)
    preview = preview_of(pixels, preview_size, orientation) if preview_size else None
    return PreparedPage(number, size[0], size[1], model_input(pixels, target, size, orientation), preview)


def _pdf_scale(target: PageTarget):
    def scale_for(geometry: PageGeometry) -> float:
        width, height = geometry.pixels
        need_w, need_h = target.needed(width, height)
        return max(need_w / geometry.points[0], need_h / geometry.points[1])

    return scale_for


def _prepare(path: Path, target: PageTarget, limits: DecodeLimits) -> Iterator[PreparedPage]:
    if media_type_of(path) == "application/pdf":
        for page in pdf_pages(path, limits, _pdf_scale(target)):
            yield _prepared(page.number, page.geometry.pixels, page.rgb, target)
        return
    for number, img in raster_frames(path, limits):
        raster = reduced_page(path, img, number, target, limits)
        yield _prepared(number, raster.size, raster.pixels, target, raster.orientation)


def prepare_pages(
    path: Path | str,
    spec: ModelInputSpec | PageTarget,
    *,
    preview_side: int | None = None,
    limits: DecodeLimits | None = None,
) -> Iterator[PreparedPage]:
    """Each page of a file, decoded once, as the model's input for ``spec`` (an InputSpec) and, with
    ``preview_side``, an RGB preview of that longest side; raise :class:`UnreadableImage` naming the
    file and the reason (a broken file, or a page over one of ``limits``)."""
    path = Path(path)
    target = spec if isinstance(spec, PageTarget) else PageTarget.of(spec, preview_side)
    yield from _guarded(path, _prepare(path, target, limits or DEFAULT_LIMITS))


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
