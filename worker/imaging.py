"""Page decoding and resizing: the one implementation that training and serving share.

``decode_pages`` turns a file (JPEG, PNG, TIFF incl. multi-page/G4/16-bit, BMP, WebP, GIF, PDF) into
RGB pages; ``to_model_input`` resizes one page to the model's input (letterbox or stretch) as uint8
HxWx3. Pixel normalisation is not done here: it lives inside the exported graph.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from schema.errors import DocsortError

MAX_PIXELS = 120_000_000  # per page: a 600 dpi A3 scan is ~70 Mpx
PDF_DPI = 150
PDF_MAX_SIDE = 4000
MAX_PAGES = 500
ResizePolicy = Literal["letterbox", "stretch"]

SUPPORTED = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),  # classic and BigTIFF
    "image/bmp": (b"BM",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
}
EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".pdf"}
MULTI_PAGE_FORMATS = {"TIFF"}  # a GIF's, WebP's or APNG's extra frames are animation, not pages


# The pixel limit of iter_pages (checked before decoding) is the one that counts; Pillow still raises
# DecompressionBombError above twice its own warning level, reported as a decompression bomb as well.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class UnreadableImage(DocsortError):
    """A file that cannot be decoded into pages. ``reason`` is meant for a person."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class DecodedPage:
    number: int  # 1-based
    image: Image.Image  # RGB


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


def _full_scale(arr: np.ndarray, mode: str) -> float:
    """The value that means white for a deep image: its container's range, not its brightest pixel."""
    if mode.startswith("I;16"):
        return 65535.0
    top = float(np.nanmax(arr)) if arr.size else 0.0
    for limit in (1.0, 255.0, 65535.0) if mode == "F" else (255.0, 65535.0):
        if top <= limit:
            return limit
    return top


def _deep_integers_to_8bit(img: Image.Image, mode: str) -> np.ndarray | None:
    """16-bit (or 0..65535 integer) pixels to 8 bits through a 65536-entry table: the same values as the
    float formula in :func:`to_rgb`, without float64 copies of the page (8 bytes a pixel each)."""
    arr = np.asarray(img)
    if arr.dtype.kind not in "ui" or arr.size == 0 or int(arr.min()) < 0 or int(arr.max()) > 65535:
        return None
    top = _full_scale(arr, mode)
    table = np.clip(np.arange(65536, dtype=np.float64) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return table[arr]


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: 16-bit scaled (not clipped), alpha over white, CMYK/palette converted."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr8 = _deep_integers_to_8bit(img, mode)
        if arr8 is None:
            arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
            top = _full_scale(arr, mode)
            arr8 = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "RGB":
        return img
    return img.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV


def _check_pixels(path: Path, img: Image.Image, max_pixels: int) -> None:
    w, h = img.size
    if w * h > max_pixels:
        raise UnreadableImage(
            path,
            f"decompression bomb refused: {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,}",
        )
    if w == 0 or h == 0:
        raise UnreadableImage(path, "image has no pixels")


def _decode_failure(path: Path, exc: BaseException) -> UnreadableImage:
    """A person-readable reason for a decoder's exception."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, Image.DecompressionBombError):
        return UnreadableImage(path, f"decompression bomb refused ({text})")
    if isinstance(exc, UnidentifiedImageError):
        return UnreadableImage(path, "not a readable image (unknown or corrupt format)")
    if isinstance(exc, MemoryError):
        return UnreadableImage(path, "image needs more memory than this worker has")
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return UnreadableImage(path, f"truncated file ({text})")
    return UnreadableImage(path, f"corrupt image ({type(exc).__name__}: {text})")


def _raster_pages(path: Path, max_pixels: int, max_pages: int) -> Iterator[DecodedPage]:
    try:
        with Image.open(path) as img:
            n = getattr(img, "n_frames", 1) if img.format in MULTI_PAGE_FORMATS else 1
            if n > max_pages:
                raise UnreadableImage(path, f"{n} pages exceeds the limit of {max_pages}")
            for index in range(n):
                img.seek(index)
                _check_pixels(path, img, max_pixels)
                frame = ImageOps.exif_transpose(img)
                frame.load()
                yield DecodedPage(index + 1, to_rgb(frame))
    except UnreadableImage:
        raise
    except Exception as exc:  # decoders raise many types on hostile input; each becomes a reason
        raise _decode_failure(path, exc) from exc


def _pdf_pages(path: Path, dpi: int, max_side: int, max_pages: int) -> Iterator[DecodedPage]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise UnreadableImage(path, f"corrupt or encrypted PDF ({exc})") from exc
    try:
        if len(pdf) == 0:
            raise UnreadableImage(path, "PDF has no pages")
        if len(pdf) > max_pages:
            raise UnreadableImage(path, f"{len(pdf)} pages exceeds the limit of {max_pages}")
        for index in range(len(pdf)):
            page = pdf[index]
            w_pt, h_pt = page.get_size()
            scale = min(dpi / 72.0, max_side / max(w_pt, h_pt, 1.0))
            bitmap = page.render(scale=scale)
            yield DecodedPage(index + 1, to_rgb(bitmap.to_pil()))
    except UnreadableImage:
        raise
    except pdfium.PdfiumError as exc:
        raise UnreadableImage(path, f"PDF page cannot be rendered ({exc})") from exc
    except Exception as exc:
        raise _decode_failure(path, exc) from exc
    finally:
        pdf.close()


def iter_pages(
    path: Path | str,
    *,
    max_pixels: int = MAX_PIXELS,
    pdf_dpi: int = PDF_DPI,
    max_pages: int = MAX_PAGES,
) -> Iterator[DecodedPage]:
    """Yield each page of a file as RGB, one at a time; raise :class:`UnreadableImage` naming the reason."""
    path = Path(path)
    media = media_type_of(path)
    if media == "application/pdf":
        yield from _pdf_pages(path, pdf_dpi, PDF_MAX_SIDE, max_pages)
    else:
        yield from _raster_pages(path, max_pixels, max_pages)


def decode_pages(path: Path | str, **kwargs: int) -> list[DecodedPage]:
    return list(iter_pages(path, **kwargs))


def resize_array(
    rgb: np.ndarray, size: tuple[int, int], policy: ResizePolicy = "letterbox", pad_value: int = 255
) -> np.ndarray:
    """Resize an HxWx3 uint8 array to ``size`` = (height, width). Letterbox keeps the aspect ratio."""
    out_h, out_w = size
    h, w = rgb.shape[:2]
    if policy == "stretch":
        interp = cv2.INTER_AREA if (h > out_h or w > out_w) else cv2.INTER_LINEAR
        return cv2.resize(rgb, (out_w, out_h), interpolation=interp)
    scale = min(out_h / h, out_w / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=interp)
    canvas = np.full((out_h, out_w, 3), pad_value, dtype=np.uint8)
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


def to_model_input(
    page: Image.Image, size: tuple[int, int], policy: ResizePolicy = "letterbox", pad_value: int = 255
) -> np.ndarray:
    """One page as the model's uint8 HxWx3 input."""
    rgb = np.asarray(to_rgb(page), dtype=np.uint8)
    return resize_array(rgb, size, policy, pad_value)


def load_model_inputs(
    path: Path | str, size: tuple[int, int], policy: ResizePolicy = "letterbox", pad_value: int = 255
) -> list[np.ndarray]:
    """Every page of a file as model inputs (the path that both trainer and worker take)."""
    return [to_model_input(p.image, size, policy, pad_value) for p in iter_pages(path)]
