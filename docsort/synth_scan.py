"""Scanner defects for synthetic pages: paper tone, uneven light, skew, punch holes, blur, speckle,
sensor noise, JPEG artefacts, and grayscale or bilevel output. Each defect is drawn at random, with a
random strength, so that no single cue gives a page's class away.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from docsort.synth_pages import Size, smooth_noise

ColourMode = Literal["rgb", "gray", "bilevel"]


@dataclass(frozen=True)
class Scanned:
    image: Image.Image  # mode RGB, L or 1
    mode: ColourMode


def _paper(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """White paper becomes slightly tinted, textured paper; ink stays ink."""
    h, w = img.shape[:2]
    grey = rng.uniform(222, 255)
    warm = rng.uniform(-4, 14)  # most paper is a little yellow, some a little blue
    tone = np.array([grey, grey - abs(warm) * 0.4, grey - warm], np.float32)
    grain = (smooth_noise(rng, (w, h), int(rng.integers(60, 160))) - 0.5) * rng.uniform(4, 18)
    return img.astype(np.float32) * (tone / 255.0) + grain


def _lighting(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Uneven light: a linear fall-off and a soft shadow, as from a book spine or a lifted lid."""
    h, w = img.shape[:2]
    strength = rng.uniform(0.0, 0.35) if rng.random() < 0.7 else 0.0
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1.0) / 2.0
    shade = 1.0 - strength * ramp**2
    if rng.random() < 0.2:  # a dark band along one edge
        edge = xx / w if rng.random() < 0.5 else 1.0 - xx / w
        shade *= 1.0 - rng.uniform(0.2, 0.6) * np.exp(-edge / rng.uniform(0.02, 0.08))
    return img * shade[..., None]


def _punch_holes(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    r = max(2, int(w * 0.022))
    x = int(w * rng.uniform(0.025, 0.045))
    out = img.copy()
    for fy in (0.3, 0.7) if rng.random() < 0.5 else (0.25, 0.5, 0.75):
        cv2.circle(out, (x, int(h * fy)), r, (40.0, 40.0, 40.0), -1, lineType=cv2.LINE_AA)
    return out


def _skew(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Rotate by a small angle; the uncovered corners are paper or, sometimes, the dark scanner bed."""
    h, w = img.shape[:2]
    angle = float(np.clip(rng.normal(0.0, 1.3), -4.0, 4.0))
    if rng.random() < 0.8:
        angle *= 0.5 if rng.random() < 0.5 else 1.0
    bed = rng.uniform(20, 70) if rng.random() < 0.15 else float(np.median(img[:4, :4]))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=(bed, bed, bed))


def _blur_and_noise(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    if rng.random() < 0.6:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.1))
    if rng.random() < 0.1:  # motion blur from a moving sheet
        k = int(rng.integers(3, 6))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        img = cv2.filter2D(img, -1, kernel)
    img = img + rng.normal(0.0, rng.uniform(0.5, 7.0), img.shape).astype(np.float32)
    density = rng.uniform(0.0, 0.003) if rng.random() < 0.5 else 0.0
    if density:
        h, w = img.shape[:2]
        specks = rng.random((h, w)) < density
        dark = rng.random((h, w)) < 0.7
        img[specks & dark] = rng.uniform(0, 90)
        img[specks & ~dark] = 255.0
    return img


def _jpeg_roundtrip(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=int(rng.integers(12, 45)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _colour_mode(rng: np.random.Generator, img: np.ndarray, kind: str) -> Scanned:
    roll = rng.random()
    bilevel_p = 0.06 if kind == "photo" else 0.15
    if roll < bilevel_p:
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        if kind == "photo" or rng.random() < 0.2:  # fax-style dithering
            return Scanned(Image.fromarray(gray).convert("1"), "bilevel")
        level = float(np.percentile(gray, 90)) * rng.uniform(0.45, 0.75)  # between ink and paper
        return Scanned(Image.fromarray(gray).point(lambda v: 255 if v > level else 0).convert("1"), "bilevel")
    if roll < bilevel_p + 0.3:
        return Scanned(Image.fromarray(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)), "gray")
    return Scanned(Image.fromarray(img), "rgb")


def scan(rng: np.random.Generator, page: np.ndarray, out_size: Size, kind: str) -> Scanned:
    """Turn a clean oversampled page into a scan of ``out_size`` (width, height) with random defects."""
    img = _paper(rng, page) if kind != "photo" or rng.random() < 0.5 else page.astype(np.float32)
    img = _lighting(rng, img)
    if kind in ("text", "form") and rng.random() < 0.12:
        img = _punch_holes(rng, img)
    img = _skew(rng, img)
    img = cv2.resize(img, out_size, interpolation=cv2.INTER_AREA)
    img = _blur_and_noise(rng, img)
    arr = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        arr = _jpeg_roundtrip(rng, arr)
    return _colour_mode(rng, arr, kind)
