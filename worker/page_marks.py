"""Page marks: whether a page is blank, and whether it is a separator sheet carrying a barcode.

Both read an image of the page at reduced size (the caller's preview decode, longest side about
1000-1700 pixels; any PIL mode or a ``uint8`` array), never the model input.

**Blank.** The page is measured at :data:`WORK_SIDE` pixels on its longest side (area-averaged down,
which also melts dither and single-pixel noise). The paper level under each pixel is a quadratic
surface fitted to the paper of a 1/16 thumbnail, so grey, yellowed or unevenly lit paper is paper
and a photograph is not.
A pixel is ink when it is darker than the paper under it by at least :data:`CONTRAST` of the paper
level and :data:`NOISE_SIGMAS` times the page's own noise (the spread of each pixel around its 3x3
median): bleed-through and sensor noise stay below that. A border of :data:`BORDER` of each side is
left out (scanner edges, the dark bed, shadows), and so are marks that touch it without reaching
further than :data:`EDGE_BAND` inward (punch holes, skew wedges, spine shadows), thin marks from edge
to edge (streaks of a dirty scanner glass, folds) and marks smaller than :data:`DUST_PIXELS` (dust).
The page is blank when the remaining ink covers at most ``ink_max`` of the page and its largest
connected mark at most ``mark_max``: one short line of text is over both.

**Separator sheet.** zxing-cpp reads the codes (:data:`CODE_FORMATS`) at the resolution given. As in
Paperless-ngx (``PATCHT``), a page is a separator sheet when one of its codes reads the separator
prefix, alone or followed by ``:`` (or a space, ``-``, ``_``, ``/``) and a class name: ``PATCHT``,
``PATCHT:invoice``. A code whose value is exactly a class name makes a separator only on a sheet with
little else on it (ink outside the codes below :data:`SHEET_INK_MAX`). Any other code (a payment QR
code, a parcel label) leaves the page a page of its document: a page is never dropped for a code that
was not meant as a separator.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp
from PIL import Image

WORK_SIDE = 1000  # pages are measured at this longest side in pixels
BORDER = 0.04  # share of each side left out: scanner edges, the bed, shadows
PAPER_FIT_ROUNDS = 4  # rounds of the paper fit
PAPER_BAND = 0.08  # thumbnail pixels this much below the fit are not paper in the next round
CONTRAST = 0.25  # ink is darker than the paper under it by at least this share of the paper level...
NOISE_SIGMAS = 6.0  # ...and by at least this many times the page's noise
EDGE_BAND = 0.08  # a mark touching the border and staying this close to it is an edge artefact
STREAK = 0.02  # a mark from edge to opposite edge no thicker than this share is a streak or a fold
DUST_PIXELS = 10  # marks smaller than this (at WORK_SIDE) are dust or noise
BLANK_INK_MAX = 0.0002  # blank: ink covers at most this share of the page...
BLANK_MARK_MAX = 0.0001  # ...and its largest mark at most this share
SHEET_INK_MAX = 0.01  # a code naming a class separates only on a sheet with less ink than this besides
SEPARATOR_PREFIX = "PATCHT"
PREFIX_JOINERS = ":-_/ "
CODE_FORMATS = zxingcpp.BarcodeFormats(
    [
        zxingcpp.BarcodeFormat.QRCode,
        zxingcpp.BarcodeFormat.MicroQRCode,
        zxingcpp.BarcodeFormat.DataMatrix,
        zxingcpp.BarcodeFormat.Aztec,
        zxingcpp.BarcodeFormat.PDF417,
        zxingcpp.BarcodeFormat.Code128,
        zxingcpp.BarcodeFormat.Code39,
        zxingcpp.BarcodeFormat.Code93,
    ]
)
CODE_MARGIN = 0.15  # the box around a code grows by this share of its size (quiet zone, printed value)

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the image given


@dataclass(frozen=True)
class InkMeasure:
    """How much of a page is ink, and whether that makes it blank."""

    blank: bool
    ink_fraction: float  # share of the page (inside the border) that is ink, dust left out
    largest_mark: float  # the largest connected mark, as a share of the page
    marks: int  # connected marks counted (dust and marks touching the border left out)
    paper: float  # median paper level, 0-255
    threshold: float  # grey levels below the paper that count as ink, at the median paper level


@dataclass(frozen=True)
class Code:
    """One barcode or QR code read on a page."""

    value: str
    format: str  # zxing-cpp's name: "QRCode", "Code128" ...
    box: Box


@dataclass(frozen=True)
class Separator:
    """A separator sheet: the code that makes it one, and the class it names (None: names none)."""

    value: str
    format: str
    label: str | None
    rule: str  # why it is a separator, for the log and the dropped page's reason


@dataclass(frozen=True)
class PageMarks:
    """What the assemble step needs to know of one page's pixels."""

    ink: InkMeasure | None  # None when not measured
    separator: Separator | None

    @property
    def blank(self) -> bool:
        return self.ink is not None and self.ink.blank


def to_grey(image: Image.Image | np.ndarray) -> np.ndarray:
    """A page as a 2-D ``uint8`` array of grey levels."""
    if isinstance(image, Image.Image):
        image = image.convert("L") if image.mode != "L" else image
        return np.asarray(image, dtype=np.uint8)
    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr[..., :3].astype(np.uint8), cv2.COLOR_RGB2GRAY)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"a page image must be 2-D grey or RGB, got shape {arr.shape}")
    if arr.dtype == bool:
        return np.where(arr, 255, 0).astype(np.uint8)
    return arr.astype(np.uint8, copy=False)


def _working(grey: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = grey.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey, scale


def _paper_level(grey: np.ndarray) -> np.ndarray:
    """The paper's grey level under each pixel: a quadratic surface (paper tone and uneven light)
    fitted to the paper of a 1/16 thumbnail, leaving out what lies below it, round after round."""
    h, w = grey.shape
    th, tw = max(8, h // 16), max(8, w // 16)
    thumb = cv2.dilate(cv2.resize(grey, (tw, th), interpolation=cv2.INTER_AREA), np.ones((3, 3), np.uint8))
    v, u = np.mgrid[-1.0 : 1.0 : th * 1j, -1.0 : 1.0 : tw * 1j]
    terms = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)
    inner_terms, inner_values = _inner(terms).reshape(-1, 6), _inner(thumb).reshape(-1).astype(np.float64)
    keep = np.ones(inner_values.shape, bool)
    for _ in range(PAPER_FIT_ROUNDS):
        chosen = inner_terms[keep]
        coef = np.linalg.solve(chosen.T @ chosen + 1e-9 * np.eye(6), chosen.T @ inner_values[keep])
        fit = inner_terms @ coef
        keep = inner_values >= fit * (1.0 - PAPER_BAND)
        if keep.sum() < 6:
            break
    level = np.clip(terms @ coef, 1.0, 255.0).astype(np.float32)
    return cv2.resize(level, (w, h), interpolation=cv2.INTER_LINEAR)


def _inner(arr: np.ndarray) -> np.ndarray:
    """The page (or its thumbnail) inside the border."""
    h, w = arr.shape[:2]
    by, bx = round(h * BORDER), round(w * BORDER)
    return arr[by : h - by, bx : w - bx]


def measure_ink(
    image: Image.Image | np.ndarray,
    ink_max: float = BLANK_INK_MAX,
    mark_max: float = BLANK_MARK_MAX,
    exclude: tuple[Box, ...] = (),
) -> InkMeasure:
    """Measure the ink on a page and decide blank; ``exclude`` boxes (image pixels) are not counted."""
    grey, scale = _working(to_grey(image))
    paper = _paper_level(grey)
    residual = _inner(paper - grey.astype(np.float32))
    if residual.size == 0:
        return InkMeasure(True, 0.0, 0.0, 0, float(np.median(grey)), 0.0)
    paper_level = float(np.median(paper[::8, ::8]))
    sigma = _noise(grey)
    threshold = np.maximum(_inner(paper) * CONTRAST, NOISE_SIGMAS * sigma)
    ink = (residual > threshold).astype(np.uint8)
    by, bx = round(grey.shape[0] * BORDER), round(grey.shape[1] * BORDER)
    for x0, y0, x1, y1 in exclude:
        ink[max(0, round(y0 * scale) - by) : max(0, round(y1 * scale) - by),
            max(0, round(x0 * scale) - bx) : max(0, round(x1 * scale) - bx)] = 0  # fmt: skip
    areas = _mark_areas(ink, max(2, round(DUST_PIXELS * (max(grey.shape) / WORK_SIDE) ** 2)))
    total = float(ink.size)
    ink_fraction = float(areas.sum()) / total
    largest = float(areas.max()) / total if areas.size else 0.0
    return InkMeasure(
        blank=ink_fraction <= ink_max and largest <= mark_max,
        ink_fraction=ink_fraction,
        largest_mark=largest,
        marks=int(areas.size),
        paper=paper_level,
        threshold=max(paper_level * CONTRAST, NOISE_SIGMAS * sigma),
    )


def _noise(grey: np.ndarray) -> float:
    """The page's pixel noise (about its standard deviation): the spread of each pixel around the median
    of its 3x3 neighbourhood, on every ninth pixel inside the border (content edges are few)."""
    sample = _inner(grey.astype(np.float32) - cv2.medianBlur(grey, 3))[::3, ::3]
    return 1.4826 * float(np.median(np.abs(sample - np.median(sample))))


def _mark_areas(ink: np.ndarray, dust: int) -> np.ndarray:
    """Areas of the connected marks that are not dust and not edge artefacts: a mark touching an edge of
    the measured area that stays within :data:`EDGE_BAND` of it (a punch hole, a skew wedge, a shadow),
    or a thin one from an edge to the opposite edge (a streak of a dirty scanner glass, a fold)."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    stats = stats[1:count]
    h, w = ink.shape
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = x + stats[:, cv2.CC_STAT_WIDTH], y + stats[:, cv2.CC_STAT_HEIGHT]
    band_x, band_y = EDGE_BAND * w, EDGE_BAND * h
    artefact = (
        ((x == 0) & (right <= band_x))
        | ((right == w) & (x >= w - band_x))
        | ((y == 0) & (bottom <= band_y))
        | ((bottom == h) & (y >= h - band_y))
        | ((x == 0) & (right == w) & (bottom - y <= STREAK * h))
        | ((y == 0) & (bottom == h) & (right - x <= STREAK * w))
    )
    areas = stats[:, cv2.CC_STAT_AREA]
    return areas[~artefact & (areas >= dust)]


def read_codes(image: Image.Image | np.ndarray) -> list[Code]:
    """Every barcode and QR code of :data:`CODE_FORMATS` that zxing-cpp reads on the page."""
    grey = np.ascontiguousarray(to_grey(image))
    codes = []
    for found in zxingcpp.read_barcodes(grey, formats=CODE_FORMATS, try_invert=False):
        pos = found.position
        xs = [pos.top_left.x, pos.top_right.x, pos.bottom_left.x, pos.bottom_right.x]
        ys = [pos.top_left.y, pos.top_right.y, pos.bottom_left.y, pos.bottom_right.y]
        pad_x = round((max(xs) - min(xs)) * CODE_MARGIN) + 4
        pad_y = round((max(ys) - min(ys)) * CODE_MARGIN) + 4
        box = (min(xs) - pad_x, min(ys) - pad_y, max(xs) + pad_x, max(ys) + pad_y)
        codes.append(Code(found.text, found.format.name, box))
    return codes


def class_named(text: str, class_names: list[str] | tuple[str, ...]) -> str | None:
    """The class ``text`` names (case and surrounding spaces ignored), or None."""
    wanted = text.strip().casefold()
    return next((name for name in class_names if name.casefold() == wanted), None)


def separator_of(
    codes: list[Code],
    class_names: list[str] | tuple[str, ...],
    prefix: str = SEPARATOR_PREFIX,
    sheet_ink: float | None = None,
) -> Separator | None:
    """The separator these codes make of their page, or None; ``sheet_ink`` is the page's ink outside
    the codes (None: not measured, so a bare class name does not make a separator)."""
    folded = prefix.casefold()
    for code in codes:
        value = code.value.strip()
        head, rest = value[: len(prefix)], value[len(prefix) :]
        if prefix and head.casefold() == folded and (not rest or rest[0] in PREFIX_JOINERS):
            named = rest[1:].strip()
            label = class_named(named, class_names) if named else None
            rule = f"{code.format} code {value!r} starts with {prefix!r}"
            if named and label is None:
                rule += f"; {named!r} names no class of this model"
            return Separator(value, code.format, label, rule)
    for code in codes:
        label = class_named(code.value, class_names)
        if label is not None and sheet_ink is not None and sheet_ink < SHEET_INK_MAX:
            rule = f"{code.format} code {code.value.strip()!r} names a class on a sheet with little else"
            return Separator(code.value.strip(), code.format, label, rule)
    return None


def mark_page(
    image: Image.Image | np.ndarray,
    *,
    blank: bool,
    barcode: bool,
    class_names: list[str] | tuple[str, ...] = (),
    prefix: str = SEPARATOR_PREFIX,
) -> PageMarks:
    """The marks the rules need: the ink measure when ``blank``, the separator when ``barcode``."""
    grey = to_grey(image)
    codes = read_codes(grey) if barcode else []
    ink = measure_ink(grey) if blank else None
    outside = measure_ink(grey, exclude=tuple(c.box for c in codes)).ink_fraction if codes else None
    return PageMarks(ink, separator_of(codes, class_names, prefix, outside))
