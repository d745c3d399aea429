"""Pixel rules shared by every decoder: 8-bit conversion, the model's resize, the sizes a page is needed at.

``to_rgb`` turns any Pillow mode into 8-bit RGB (16-bit scaled, alpha over white); ``to_eight_bit`` does
the same but keeps grey pages grey (a third of the bytes). ``resize_array`` is the model's letterbox or
stretch resize. :class:`PageTarget` says what a page is decoded for (a model input, a preview) and so
the smallest size that serves both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image, UnidentifiedImageError

from schema.errors import DocsortError

ResizePolicy = Literal["letterbox", "stretch"]
DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
STRIP_PIXELS = 1 << 20  # pixels converted at a time: no full-size copy of a page in another mode is made
# A reduced decode keeps at least this many times the pixels the model and the preview need along each
# side, so that its last resize still averages whole neighbourhoods (see worker.imaging, TOLERANCE).
OVERSAMPLE = 2.0
# A grey page reduced by at least this much along each side uses Pillow's box filter (each output pixel
# the mean of the source pixels whose centres fall in it: at most 1/BOX_RATIO of a pixel from OpenCV's
# exact area average, and about five times faster on a whole A4 page); the rest OpenCV's area resize.
BOX_RATIO = 8


class UnreadableImage(DocsortError):
    """A file that cannot be decoded into pages. ``reason`` is meant for a person."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ModelInputSpec(Protocol):
    """What the model takes (``schema.manifest.InputSpec`` has these fields)."""

    height: int
    width: int
    resize: ResizePolicy
    pad_value: int


@dataclass(frozen=True)
class PageTarget:
    """What a page is decoded for: the model's input and, optionally, a preview of ``preview_side``."""

    height: int
    width: int
    resize: ResizePolicy = "letterbox"
    pad_value: int = 255
    preview_side: int | None = None

    @classmethod
    def of(cls, spec: ModelInputSpec, preview_side: int | None = None) -> PageTarget:
        return cls(spec.height, spec.width, spec.resize, spec.pad_value, preview_side)

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    def preview_size(self, width: int, height: int) -> tuple[int, int] | None:
        """(width, height) of the preview of a ``width`` x ``height`` page (never enlarged)."""
        return preview_size(self.preview_side, width, height) if self.preview_side else None

    def needed(self, width: int, height: int) -> tuple[int, int]:
        """The smallest (width, height) a ``width`` x ``height`` page may be decoded at for the model.

        It depends on the model's input only, never on the preview: the model input is one function of
        the file and the input spec, whoever asks (the trainer asks for no preview)."""
        if self.resize == "stretch":
            need_w, need_h = float(self.width), float(self.height)
        else:
            scale = min(self.height / height, self.width / width)
            need_w, need_h = width * scale, height * scale
        return min(width, math.ceil(need_w * OVERSAMPLE)), min(height, math.ceil(need_h * OVERSAMPLE))


def preview_size(side: int, width: int, height: int) -> tuple[int, int]:
    """(width, height) of the preview of longest side ``side`` of a ``width`` x ``height`` page (never
    enlarged)."""
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def serves(decoded: tuple[int, int], wanted: tuple[int, int] | None) -> bool:
    """Whether a page decoded at ``decoded`` (width, height) is large enough for ``wanted``."""
    return wanted is None or (decoded[0] >= wanted[0] and decoded[1] >= wanted[1])


def full_scale(top: float, mode: str) -> float:
    """The value that means white for a deep image whose brightest pixel is ``top``: its container's range."""
    if mode.startswith("I;16"):
        return 65535.0
    for limit in (1.0, 255.0, 65535.0) if mode == "F" else (255.0, 65535.0):
        if top <= limit:
            return limit
    return top


def strip_rows(width: int) -> int:
    """Rows in a strip of about STRIP_PIXELS pixels."""
    return max(1, STRIP_PIXELS // max(1, width))


def _strips(img: Image.Image):
    """Horizontal strips of ``img`` as arrays (a strip's copy at a time, never the whole page)."""
    w, h = img.size
    rows = strip_rows(w)
    for top in range(0, h, rows):
        yield top, np.asarray(img.crop((0, top, w, min(h, top + rows))))


def deep_top(img: Image.Image) -> float:
    """The brightest value of a 32-bit integer or float page (NaN counted as 0), read strip by strip."""
    if img.mode.startswith("I;16"):
        return 65535.0
    top = 0.0
    for _, strip in _strips(img):
        top = max(top, float(np.max(np.nan_to_num(strip))) if strip.size else 0.0)
    return top


def _deep_to_grey(img: Image.Image, top: float | None) -> Image.Image:
    """16-bit, 32-bit integer or float grey to 8 bits, scaled (not clipped) by the container's range."""
    scale = full_scale(deep_top(img) if top is None else top, img.mode)
    table = None
    if img.mode.startswith("I;16"):
        table = np.clip(np.arange(65536, dtype=np.float64) / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = np.empty((img.height, img.width), np.uint8)
    for y, strip in _strips(img):
        if table is not None:
            out[y : y + strip.shape[0]] = table[strip]
        else:
            values = np.nan_to_num(strip.astype(np.float64))
            out[y : y + strip.shape[0]] = np.clip(values / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(out, "L")


def to_eight_bit(img: Image.Image, top: float | None = None) -> Image.Image:
    """Any Pillow mode to "L" (bilevel, grey, deep grey) or "RGB" (everything else), alpha over white.

    ``top`` is the brightest value of the whole page when ``img`` is a strip of a deep page.
    """
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode in DEEP_MODES:
        return _deep_to_grey(img, top)
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: 16-bit scaled (not clipped), alpha over white, CMYK/palette converted."""
    eight = to_eight_bit(img)
    return eight if eight.mode == "RGB" else eight.convert("RGB")


GREY_RESULT_MODES = ("1", "L", *DEEP_MODES)


def eight_bit_array(img: Image.Image) -> np.ndarray:
    """A decoded page as uint8 HxW (bilevel, grey, deep grey) or HxWx3 (everything else, alpha over
    white): the pixels of :func:`to_eight_bit`, converted strip by strip into one array, so no full-size
    copy in a second Pillow mode is made."""
    if img.mode in ("L", "RGB"):
        return np.asarray(img)
    w, h = img.size
    out = np.empty((h, w) if img.mode in GREY_RESULT_MODES else (h, w, 3), np.uint8)
    top = deep_top(img) if img.mode in DEEP_MODES else None
    rows = strip_rows(w)
    for y in range(0, h, rows):
        strip = to_eight_bit(img.crop((0, y, w, min(h, y + rows))), top)
        out[y : y + strip.height] = np.asarray(strip)
    return out


# EXIF orientation (2..8) as the array operation Pillow's Image.transpose does
ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
SWAPS_SIDES = frozenset({5, 6, 7, 8})


def oriented(arr: np.ndarray, orientation: int) -> np.ndarray:
    """``arr`` turned as EXIF ``orientation`` says (1 or unknown: unchanged)."""
    op = ORIENT.get(orientation)
    return np.ascontiguousarray(op(arr)) if op is not None else arr


def _area_resize(arr: np.ndarray, size: tuple[int, int], orientation: int) -> np.ndarray:
    """``arr`` (stored orientation) resized so that, once oriented, it is ``size`` = (width, height).

    A reduction is an area average. A grey page reduced by ``BOX_RATIO`` or more (a whole A4 page to a
    model input) goes to Pillow's separable box filter, without a copy, turned upright first (which
    pixels fall in a box depends on the direction: so every orientation gives the same pixels); a colour
    page would be copied into Pillow's 4 bytes a pixel, so it, and any smaller reduction, takes OpenCV's
    exact area resize. An enlargement is bilinear."""
    w, h = size
    src_h, src_w = arr.shape[:2]
    up_w, up_h = (src_h, src_w) if orientation in SWAPS_SIDES else (src_w, src_h)
    if arr.ndim == 2 and up_w >= BOX_RATIO * w and up_h >= BOX_RATIO * h:
        upright = Image.fromarray(oriented(arr, orientation))
        return np.asarray(upright.resize((w, h), Image.Resampling.BOX))
    stored_w, stored_h = (h, w) if orientation in SWAPS_SIDES else (w, h)
    interp = cv2.INTER_AREA if (stored_h < src_h or stored_w < src_w) else cv2.INTER_LINEAR
    same = (stored_w, stored_h) == (src_w, src_h)
    resized = arr if same else cv2.resize(arr, (stored_w, stored_h), interpolation=interp)
    return oriented(resized, orientation)


def model_input(
    arr: np.ndarray, target: PageTarget, source_size: tuple[int, int], orientation: int = 1
) -> np.ndarray:
    """The model's uint8 HxWx3 input from a page's pixels ``arr`` (HxW grey or HxWx3, decoded at any
    scale, in its stored orientation): the same as :func:`resize_array` of the oriented page in RGB.
    ``source_size`` is the page's own oriented (width, height); it fixes the letterbox geometry."""
    out_h, out_w = target.size
    if target.resize == "stretch":
        content = _area_resize(arr, (out_w, out_h), orientation)
        return content if content.ndim == 3 else cv2.cvtColor(content, cv2.COLOR_GRAY2RGB)
    src_w, src_h = source_size
    scale = min(out_h / src_h, out_w / src_w)
    new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    content = _area_resize(arr, (new_w, new_h), orientation)
    canvas = np.full((out_h, out_w, 3), target.pad_value, dtype=np.uint8)
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = content if content.ndim == 3 else content[..., None]
    return canvas


def preview_source(arr: np.ndarray, size: tuple[int, int], orientation: int = 1) -> np.ndarray:
    """A page's pixels ``arr`` (stored orientation) reduced by the largest whole factor k that leaves
    them at least ``size`` (oriented width, height): each pixel the mean of a k x k block (Pillow's
    ``reduce`` for grey, a few ms for an A4 page; OpenCV's area resize for colour, which is exact and
    fast for k = 2 and 4). Less than 2x the preview along each side is left (``arr`` itself when k < 2):
    the first step of :func:`preview_of`, which a decode may keep to make the preview later."""
    want_w, want_h = (size[1], size[0]) if orientation in SWAPS_SIDES else size
    src_h, src_w = arr.shape[:2]
    k = min(src_w // max(1, want_w), src_h // max(1, want_h))
    if k < 2:
        return arr
    if arr.ndim == 2:
        return np.asarray(Image.fromarray(arr).reduce(k))
    return cv2.resize(arr, (src_w // k, src_h // k), interpolation=cv2.INTER_AREA)


def preview_of(arr: np.ndarray, size: tuple[int, int], orientation: int = 1) -> Image.Image:
    """The preview of ``size`` (oriented width, height) from a page's pixels, grey ("L") for a grey or
    bilevel page (HxW), RGB for a colour one: :func:`preview_source` (k x k block means), then a bilinear
    resize of what is left, less than 2x along each side, so every source pixel still counts (an area
    resize at such a small ratio took 20-30 ms an A4 preview, the bilinear one 1-2 ms; 0.2 grey levels
    apart)."""
    source = preview_source(arr, size, orientation)
    want = (size[1], size[0]) if orientation in SWAPS_SIDES else size
    same = (source.shape[1], source.shape[0]) == want
    small = oriented(
        source if same else cv2.resize(source, want, interpolation=cv2.INTER_LINEAR), orientation
    )
    return Image.fromarray(small, "RGB" if small.ndim == 3 else "L")


def resize_array(
    rgb: np.ndarray, size: tuple[int, int], policy: ResizePolicy = "letterbox", pad_value: int = 255
) -> np.ndarray:
    """Resize an HxWx3 uint8 array to ``size`` = (height, width). Letterbox keeps the aspect ratio."""
    h, w = rgb.shape[:2]
    return model_input(rgb, PageTarget(size[0], size[1], policy, pad_value), (w, h))


# The task's time is up (Celery's soft time limit, raised wherever the decode is): never a reason about
# the file; every decoder's catch-all lets it pass to the task, which gives the job up with that reason.
TIME_UP = (SoftTimeLimitExceeded,)


def decode_failure(path: Path, exc: BaseException) -> UnreadableImage:
    """A person-readable reason for a decoder's exception."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, Image.DecompressionBombError):
        return UnreadableImage(
            path, f"decompression bomb refused ({text}), over the page pixel limit (DOCSORT_MAX_PAGE_PIXELS)"
        )
    if isinstance(exc, UnidentifiedImageError):
        return UnreadableImage(path, "not a readable image (unknown or corrupt format)")
    if isinstance(exc, MemoryError):
        return UnreadableImage(path, f"image needs more memory than this worker has (MemoryError: {text})")
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return UnreadableImage(path, f"truncated file ({text})")
    return UnreadableImage(path, f"corrupt image ({type(exc).__name__}: {text})")
