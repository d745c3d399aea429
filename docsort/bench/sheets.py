"""Scanned A4 sheets for measuring page marks: blank sheets, separator sheets, short-line pages and
content pages, each through a scanner with chosen defects.

A sheet is drawn clean at its output size (grey, ``uint8``) and then scanned: skew (with the dark
scanner bed in the uncovered corners, if asked), the mirrored text of the sheet's back showing
through, paper tone and uneven light, dust and hairs, blur and sensor noise. :class:`Defects` names
each one, so that a test can set exactly one and a benchmark can draw them all at random
(:func:`random_defects`). Every function takes its random generator: the same seed gives the same
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import barcode  # type: ignore[import-untyped]
import cv2
import numpy as np
import segno
from PIL import Image, ImageDraw

from docsort.synth_pages import RENDERERS, Size, render_text
from docsort.synth_text import pick_font, sentence

A4_MM = (210.0, 297.0)
MM_PER_INCH = 25.4
BACK_SCALE = 4  # the back's text is drawn at a quarter of the size: it shows through blurred anyway
PHOTO_SCALE = 4  # photos are drawn small and enlarged: they are smooth
Symbology = Literal["qr", "code128"]
SYMBOLOGIES: tuple[Symbology, ...] = ("qr", "code128")


@dataclass(frozen=True)
class Defects:
    """What the scanner and the paper add to a clean sheet; the defaults add nothing."""

    paper: int = 255  # grey level of the paper
    light: float = 0.0  # fall-off of the light across the sheet (0.3: a third darker in one corner)
    dust: int = 0  # specks, 1-3 pixels across, in dark greys
    hairs: int = 0  # short dark curved strokes
    bleed: float = 0.0  # share of the back's ink contrast that shows through (0.1: faint)
    noise: float = 0.0  # sensor noise, standard deviation in grey levels
    skew: float = 0.0  # degrees
    bed: bool = False  # the corners uncovered by the skew show the dark scanner bed
    blur: float = 0.0  # Gaussian blur sigma in pixels
    holes: int = 0  # punch holes along the left edge (2 or 3), dark as the scanner lid behind them
    shadow: float = 0.0  # a dark band along the right edge, as from a book spine (0.5: half as bright)


def a4_size(dpi: int) -> Size:
    """(width, height) in pixels of a portrait A4 sheet at ``dpi``: 1240 x 1754 at 150 dpi."""
    w, h = (round(mm / MM_PER_INCH * dpi) for mm in A4_MM)
    return w, h


def random_defects(rng: np.random.Generator) -> Defects:
    """Defects as a stack of office scans shows them: most mild, some strong."""
    return Defects(
        paper=int(rng.uniform(205, 255)),
        light=float(rng.uniform(0.0, 0.25)) if rng.random() < 0.6 else 0.0,
        dust=int(rng.integers(0, 120)) if rng.random() < 0.6 else 0,
        hairs=int(rng.integers(0, 4)) if rng.random() < 0.3 else 0,
        bleed=float(rng.uniform(0.03, 0.14)) if rng.random() < 0.5 else 0.0,
        noise=float(rng.uniform(1.0, 8.0)),
        skew=float(np.clip(rng.normal(0.0, 1.0), -3.0, 3.0)),
        bed=bool(rng.random() < 0.15),
        blur=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.5 else 0.0,
        holes=int(rng.choice([2, 3])) if rng.random() < 0.1 else 0,
        shadow=float(rng.uniform(0.2, 0.6)) if rng.random() < 0.15 else 0.0,
    )


def _skew(img: np.ndarray, d: Defects) -> np.ndarray:
    if not d.skew:
        return img
    h, w = img.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), d.skew, 1.0)
    border = 35 if d.bed else 255
    return cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=border)


def _bleed(rng: np.random.Generator, img: np.ndarray, strength: float) -> np.ndarray:
    """The back's text, mirrored and blurred, darkens the front by ``strength`` of its contrast."""
    h, w = img.shape
    back = render_text(rng, (w // BACK_SCALE, h // BACK_SCALE))[..., 0]
    ghost = cv2.resize(255 - back[:, ::-1], (w, h), interpolation=cv2.INTER_LINEAR)
    ghost = cv2.GaussianBlur(ghost, (0, 0), 2.0)
    return cv2.subtract(img, cv2.convertScaleAbs(ghost, alpha=strength))


def _light(img: np.ndarray, d: Defects, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1.0) / 2.0
    shade = (1.0 - d.light * ramp**2) * (d.paper / 255.0)
    if d.shadow:
        shade *= 1.0 - d.shadow * np.exp(-(1.0 - xx / w) / 0.04)
    return np.clip(img.astype(np.float32) * shade, 0, 255).astype(np.uint8)


def _dust(rng: np.random.Generator, img: np.ndarray, d: Defects) -> None:
    """Specks, hairs and punch holes, drawn in place."""
    h, w = img.shape
    for i in range(d.holes):
        centre = (round(w * 0.035), round(h * (i + 1) / (d.holes + 1)))
        cv2.circle(img, centre, round(w * 0.022), 40, -1, cv2.LINE_AA)
    for _ in range(d.dust):
        centre = (int(rng.integers(w)), int(rng.integers(h)))
        cv2.circle(img, centre, int(rng.integers(1, 3)), int(rng.integers(20, 120)), -1)
    for _ in range(d.hairs):
        start = np.array([rng.integers(w), rng.integers(h)], np.float64)
        pts = (start + np.cumsum(rng.normal(0, 5, (10, 2)), axis=0)).astype(np.int32)
        cv2.polylines(img, [pts], False, 60, 1, cv2.LINE_AA)


def scan_sheet(rng: np.random.Generator, clean: np.ndarray, d: Defects) -> np.ndarray:
    """A clean grey sheet (white paper, dark ink) as the scanner hands it over, with ``d``'s defects."""
    img = _bleed(rng, clean, d.bleed) if d.bleed else clean.copy()
    img = _light(img, d, rng) if (d.light or d.shadow or d.paper != 255) else img
    _dust(rng, img, d)
    img = _skew(img, d)
    if d.blur:
        img = cv2.GaussianBlur(img, (0, 0), d.blur)
    if d.noise:
        noisy = img.astype(np.float32) + rng.normal(0.0, d.noise, img.shape).astype(np.float32)
        img = np.clip(noisy, 0, 255).astype(np.uint8)
    return img


def blank_sheet(rng: np.random.Generator, size: Size, d: Defects) -> np.ndarray:
    """A sheet with nothing printed on it."""
    return scan_sheet(rng, np.full((size[1], size[0]), 255, np.uint8), d)


def line_sheet(rng: np.random.Generator, size: Size, d: Defects, words: int = 5) -> np.ndarray:
    """A sheet carrying one short line of 10-12 pt text and nothing else (a closing line, a page number)."""
    w, h = size
    page = Image.new("L", size, 255)
    font = pick_font(rng, h * rng.uniform(0.012, 0.015))  # 10-12 pt on A4
    text = " ".join(sentence(rng, words, words + 1).split()[:words])
    y = h * rng.uniform(0.1, 0.85)
    ImageDraw.Draw(page).text((w * rng.uniform(0.1, 0.4), y), text, font=font, fill=25)
    return scan_sheet(rng, np.asarray(page).copy(), d)


def content_sheet(rng: np.random.Generator, kind: str, size: Size, d: Defects) -> np.ndarray:
    """A page of one of the generator's classes (text, form, photo, drawing), in grey."""
    if kind == "photo":
        small = RENDERERS[kind](rng, (size[0] // PHOTO_SCALE, size[1] // PHOTO_SCALE))
        rgb = cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)
    else:
        rgb = RENDERERS[kind](rng, size)
    return scan_sheet(rng, np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)), d)


def code_modules(value: str, symbology: Symbology) -> np.ndarray:
    """The code's modules as a boolean array (True: dark), one row for a linear barcode."""
    if symbology == "qr":
        return np.array(segno.make_qr(value, error="m").matrix, dtype=bool)
    bars = barcode.get("code128", value).build()[0]
    return np.array([[c == "1" for c in bars]], dtype=bool)


def separator_sheet(
    rng: np.random.Generator, size: Size, value: str, symbology: Symbology, d: Defects, caption: bool = True
) -> np.ndarray:
    """A separator sheet: ``value`` as a QR code (about 4 cm) or a Code 128 barcode (about 7 cm wide)
    in the middle of the sheet, with a heading and the value printed under it when ``caption``."""
    w, h = size
    modules = code_modules(value, symbology)
    if symbology == "qr":
        module = max(3, round(w * 0.19 / modules.shape[1]))
        dark = np.kron(modules, np.ones((module, module), bool))
    else:
        module = max(2, round(w * 0.33 / modules.shape[1]))
        dark = np.repeat(np.repeat(modules, round(h * 0.06), axis=0), module, axis=1)
    page = Image.new("L", size, 255)
    if caption:
        draw = ImageDraw.Draw(page)
        draw.text((w * 0.12, h * 0.12), "SEPARATOR SHEET", font=pick_font(rng, h * 0.025, bold=True), fill=20)
        draw.text((w * 0.12, h * 0.7), value, font=pick_font(rng, h * 0.014), fill=20)
    arr = np.asarray(page).copy()
    bh, bw = dark.shape
    top, left = (h - bh) // 2, (w - bw) // 2
    arr[top : top + bh, left : left + bw] = np.where(dark, 15, 255).astype(np.uint8)
    return scan_sheet(rng, arr, d)
