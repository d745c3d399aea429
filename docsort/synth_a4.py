"""A4 scans at real resolution, fast: pages of each class, blank pages and separator sheets.

``a4_page(seed, kind, index)`` draws one page of A4 at 300 dpi (2480 x 3508; photos and drawings
sometimes landscape) in a few hundred milliseconds: text, forms and drawings with the clean renderers
of :mod:`docsort.synth_pages` at full size, photos at a fifth and enlarged (they are smooth). The scan
defects are kept cheap on purpose: skew, paper tone and uneven light as one low-resolution field
enlarged once, sensor noise from a cached noise plane, dust, punch holes, bleed-through; JPEG artefacts
come from the file format. ``blank_page`` is paper with no content; ``separator_page`` a sheet with a
QR code (segno) or a Code 128 barcode (python-barcode) that a barcode reader reads back.
Every page is drawn from its own random generator, so the same arguments give the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import barcode
import cv2
import numpy as np
import segno
from PIL import Image, ImageDraw

from docsort.synth_pages import RENDERERS, Size, render_text
from docsort.synth_text import pick_font

A4_MM = (210.0, 297.0)
MM_PER_INCH = 25.4
PHOTO_SCALE = 5  # photos are drawn at a fifth of the page's size and enlarged (they are smooth)
BLEED_SCALE = 8
NOISE_MARGIN = 64
NOISE_SD = 5.0
NOISE_TILE = 1021  # a prime: the tiling does not line up with text lines
Symbology = Literal["qr", "code128"]
SYMBOLOGIES: tuple[str, ...] = ("qr", "code128")


@dataclass(frozen=True)
class A4Page:
    pixels: np.ndarray  # uint8 HxW (grey) or HxWx3 (colour)
    kind: str  # a class, "blank" or "separator"

    def image(self) -> Image.Image:
        return Image.fromarray(self.pixels, "L" if self.pixels.ndim == 2 else "RGB")


def a4_size(dpi: int, landscape: bool = False) -> Size:
    """(width, height) of an A4 page at ``dpi``: 2480 x 3508 at 300 dpi."""
    w, h = (round(mm / MM_PER_INCH * dpi) for mm in A4_MM)
    return (h, w) if landscape else (w, h)


def page_rng(seed: int, kind: str, index: int, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, 4, sum(kind.encode()), len(kind), index, salt])


# --- defects ----------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _noise_plane(shape: tuple[int, ...]) -> np.ndarray:
    """Gaussian sensor noise (sd 5 grey levels) a little larger than a page, made once per page shape."""
    tile = np.random.default_rng(12345).normal(0.0, NOISE_SD, (NOISE_TILE, NOISE_TILE, *shape[2:]))
    reps = (-(-(shape[0] + NOISE_MARGIN) // NOISE_TILE), -(-(shape[1] + NOISE_MARGIN) // NOISE_TILE), 1)
    return np.tile(np.round(tile).astype(np.int16), reps[: tile.ndim])


def _noise(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Sensor noise: a window of the cached plane at a random offset, added with saturation."""
    plane = _noise_plane(img.shape)
    y, x = (int(v) for v in rng.integers(0, NOISE_MARGIN, 2))
    h, w = img.shape[:2]
    return cv2.add(img, plane[y : y + h, x : x + w], dtype=cv2.CV_8U)


def _light_field(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Paper tone x uneven light x paper grain, as uint8 (255 = no change), drawn small and enlarged."""
    h, w = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    gh, gw = 72, max(2, round(72 * w / h))
    grey = rng.uniform(0.86, 1.0)
    warm = rng.uniform(-0.015, 0.05)
    tone = np.array([grey, grey - abs(warm) * 0.4, grey - warm], np.float32)[:channels]
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / gw + np.sin(angle) * yy / gh + 1.0) / 2.0
    shade = 1.0 - (rng.uniform(0.0, 0.25) if rng.random() < 0.7 else 0.0) * ramp**2
    if rng.random() < 0.2:  # a dark band along one edge, as from a book spine
        edge = xx / gw if rng.random() < 0.5 else 1.0 - xx / gw
        shade *= 1.0 - rng.uniform(0.2, 0.5) * np.exp(-edge / rng.uniform(0.02, 0.06))
    grain = 1.0 + (rng.random((gh, gw)).astype(np.float32) - 0.5) * rng.uniform(0.0, 0.04)
    field = (shade * grain)[..., None] * tone
    small = np.clip(field * 255.0, 0, 255).astype(np.uint8)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return big.reshape(shape)


def _skew(rng: np.random.Generator, img: np.ndarray, paper: int) -> tuple[np.ndarray, bool]:
    """The page turned by a small angle (most sheets are fed a little crooked); whether it turned.

    Colour pages are turned with nearest-neighbour sampling (a third of the cost) and blurred after."""
    angle = float(np.clip(rng.normal(0.0, 0.8), -3.0, 3.0))
    if rng.random() < 0.3 or abs(angle) < 0.05:
        return img, False
    h, w = img.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    bed = int(rng.uniform(20, 70)) if rng.random() < 0.1 else paper
    border = (bed,) * (3 if img.ndim == 3 else 1)
    flags = cv2.INTER_NEAREST if img.ndim == 3 else cv2.INTER_LINEAR
    return cv2.warpAffine(img, matrix, (w, h), flags=flags, borderValue=border), img.ndim == 3


def _dust(rng: np.random.Generator, img: np.ndarray, amount: float) -> None:
    """Specks and a few hairs, drawn in place."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(0, 1 + int(400 * amount)))):
        level = int(rng.integers(0, 110))
        colour = (level,) * 3 if img.ndim == 3 else level
        cv2.circle(img, (int(rng.integers(w)), int(rng.integers(h))), int(rng.integers(1, 4)), colour, -1)
    for _ in range(int(rng.integers(0, 1 + int(4 * amount)))):
        x, y = int(rng.integers(w)), int(rng.integers(h))
        steps = np.cumsum(rng.normal(0, 6, (12, 2)), axis=0) + rng.normal(0, 12, 2).cumsum()
        pts = (np.array([x, y]) + steps).astype(np.int32)
        cv2.polylines(img, [pts], False, (40,) * 3 if img.ndim == 3 else 40, 2, cv2.LINE_AA)


def _punch_holes(rng: np.random.Generator, img: np.ndarray) -> None:
    h, w = img.shape[:2]
    r, x = max(2, int(w * 0.022)), int(w * rng.uniform(0.025, 0.045))
    for fy in (0.3, 0.7) if rng.random() < 0.5 else (0.25, 0.5, 0.75):
        cv2.circle(img, (x, int(h * fy)), r, (40,) * 3 if img.ndim == 3 else 40, -1, lineType=cv2.LINE_AA)


def _bleed_through(rng: np.random.Generator, img: np.ndarray, strength: float) -> np.ndarray:
    """The mirrored, blurred text of the sheet's other side, showing faintly through the paper."""
    h, w = img.shape[:2]
    back = render_text(rng, (w // BLEED_SCALE, h // BLEED_SCALE))[..., 0]
    ghost = cv2.GaussianBlur(255 - back[:, ::-1], (0, 0), 1.0)
    ghost = cv2.resize(ghost, (w, h), interpolation=cv2.INTER_LINEAR)
    ghost = cv2.convertScaleAbs(ghost, alpha=strength)
    return cv2.subtract(img, ghost if img.ndim == 2 else cv2.cvtColor(ghost, cv2.COLOR_GRAY2RGB))


def scan_defects(rng: np.random.Generator, clean: np.ndarray, kind: str, sharp: bool = False) -> np.ndarray:
    """A clean page through a cheap scanner: skew, light and paper, dust, blur, noise."""
    img, jagged = _skew(rng, clean, 255)
    if kind == "blank" or rng.random() < 0.15:
        img = _bleed_through(rng, img, rng.uniform(0.04, 0.12))
    img = cv2.multiply(img, _light_field(rng, img.shape), scale=1.0 / 255.0)  # a new array
    if kind in ("text", "form") and rng.random() < 0.12:
        _punch_holes(rng, img)
    _dust(rng, img, rng.uniform(0.0, 1.0) if rng.random() < 0.6 else 0.0)
    if jagged or (not sharp and rng.random() < 0.5):
        img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.5, 0.9))
    return _noise(rng, img) if rng.random() < 0.85 else img


# --- pages ------------------------------------------------------------------------------------------


def _clean(rng: np.random.Generator, kind: str, size: Size) -> np.ndarray:
    if kind == "photo":
        small = RENDERERS["photo"](rng, (size[0] // PHOTO_SCALE, size[1] // PHOTO_SCALE))
        return cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)
    page = RENDERERS[kind](rng, size)
    if kind == "text":
        return np.ascontiguousarray(page[..., 0])  # typed text is drawn grey
    return page


def a4_page(seed: int, kind: str, index: int, dpi: int = 300, colour: bool | None = None) -> A4Page:
    """One scanned page of class ``kind``; ``colour`` False gives grey, True colour, None as drawn."""
    rng = page_rng(seed, kind, index)
    size = a4_size(dpi, landscape=kind in ("photo", "drawing") and rng.random() < 0.35)
    pixels = scan_defects(rng, _clean(rng, kind, size), kind)
    return A4Page(_in_colour(pixels, colour), kind)


def _in_colour(pixels: np.ndarray, colour: bool | None) -> np.ndarray:
    if colour is True and pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    if colour is False and pixels.ndim == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    return pixels


def blank_page(seed: int, index: int, dpi: int = 300, colour: bool | None = None) -> A4Page:
    """A sheet with nothing on it: paper tone, light, dust, bleed-through from its back, noise."""
    rng = page_rng(seed, "blank", index)
    w, h = a4_size(dpi)
    pixels = scan_defects(rng, np.full((h, w), 255, np.uint8), "blank")
    return A4Page(_in_colour(pixels, colour), "blank")


def _qr_modules(text: str) -> np.ndarray:
    return np.array([list(row) for row in segno.make_qr(text, error="m").matrix], dtype=bool)


def _code128_modules(text: str) -> np.ndarray:
    bars = barcode.get("code128", text).build()[0]
    return np.array([[c == "1" for c in bars]], dtype=bool)


def separator_page(
    seed: int, index: int, code: str, symbology: Symbology = "qr", dpi: int = 300, colour: bool | None = None
) -> A4Page:
    """A separator sheet: ``code`` as a large QR code or Code 128 barcode, and the word SEPARATOR."""
    rng = page_rng(seed, "separator", index)
    w, h = a4_size(dpi)
    page = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(page)
    font = pick_font(rng, h * 0.03, bold=True)
    draw.text((w * 0.12, h * 0.12), "SEPARATOR", font=font, fill=20)
    draw.text((w * 0.12, h * 0.82), code, font=pick_font(rng, h * 0.015), fill=20)
    if symbology == "qr":
        modules = _qr_modules(code)
        module = max(4, round(dpi / 300 * 28))
        quiet = 4 * module
        bars = np.kron(~modules, np.ones((module, module), bool))
    else:
        modules = _code128_modules(code)
        module = max(2, round(dpi / 300 * 6))
        quiet = 12 * module
        bars = np.repeat(np.repeat(~modules, round(h * 0.12), axis=0), module, axis=1)
    arr = np.asarray(page).copy()
    bh, bw = bars.shape
    top, left = (h - bh) // 2, (w - bw) // 2
    arr[top - quiet : top + bh + quiet, left - quiet : left + bw + quiet] = 255
    arr[top : top + bh, left : left + bw] = np.where(bars, 255, 15).astype(np.uint8)
    pixels = scan_defects(rng, arr, "separator", sharp=True)
    return A4Page(_in_colour(pixels, colour), "separator")
