"""CAM overlay: the class activation map of the predicted class as a heat map over the page, beside the page.

The map comes from the model's ``cam`` output (computed inside the graph from the GAP head's weights),
so no gradients are needed. It covers the model input; for a letterboxed input only the part that
holds the page is used, so the heat lies where the page content was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from schema.manifest import InputSpec

GAP = 8  # pixels between the plain page and the overlay
OVERLAY_SIDE = 1000  # longest side of each half of an overlay: enough to see where the heat lies
PNG_LEVEL = 1  # zlib level: review images are written on the hot path; level 1 is several times faster


def content_box(page_size: tuple[int, int], spec: InputSpec) -> tuple[float, float, float, float]:
    """(top, left, bottom, right) of the page inside the model input, as fractions of the input."""
    if spec.resize == "stretch":
        return 0.0, 0.0, 1.0, 1.0
    w, h = page_size
    scale = min(spec.height / h, spec.width / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    top, left = (spec.height - new_h) // 2, (spec.width - new_w) // 2
    return top / spec.height, left / spec.width, (top + new_h) / spec.height, (left + new_w) / spec.width


def normalise(cam: np.ndarray) -> np.ndarray:
    """A 2-D map scaled to 0..1: positive evidence only (as Grad-CAM), stretched to its range."""
    m = np.nan_to_num(np.maximum(np.asarray(cam, dtype=np.float64), 0.0))
    lo, hi = float(m.min()), float(m.max())
    if hi - lo > 1e-9:
        return (m - lo) / (hi - lo)
    return np.full_like(m, 1.0 if hi > 0 else 0.0)


def page_cells(shape: tuple[int, ...], page_size: tuple[int, int], spec: InputSpec) -> tuple[slice, slice]:
    """The rows and columns of a map of ``shape`` (h, w, ...) that cover the page's part of the input."""
    ch, cw = shape[0], shape[1]
    top, left, bottom, right = content_box(page_size, spec)
    r0, r1 = int(np.floor(top * ch)), max(int(np.ceil(bottom * ch)), int(np.floor(top * ch)) + 1)
    c0, c1 = int(np.floor(left * cw)), max(int(np.ceil(right * cw)), int(np.floor(left * cw)) + 1)
    return slice(r0, r1), slice(c0, c1)


def heatmap_for_page(cam: np.ndarray, page_size: tuple[int, int], spec: InputSpec) -> np.ndarray:
    """The class map cropped to the page's part of the input and resized to ``page_size`` (w, h); 0..1."""
    rows, cols = page_cells(cam.shape, page_size, spec)
    cropped = normalise(cam[rows, cols])
    w, h = page_size
    return np.clip(cv2.resize(cropped.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def overlay_image(page: Image.Image, cam: np.ndarray, spec: InputSpec, alpha: float = 0.45) -> Image.Image:
    """The page on the left, the page with the heat map blended over it on the right."""
    rgb = np.asarray(page.convert("RGB"), dtype=np.uint8)
    h, w = rgb.shape[:2]
    heat = heatmap_for_page(cam, (w, h), spec)
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    blended = (rgb.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha).astype(np.uint8)
    canvas = np.full((h, 2 * w + GAP, 3), 255, dtype=np.uint8)
    canvas[:, :w] = rgb
    canvas[:, w + GAP :] = blended
    return Image.fromarray(canvas, "RGB")


def class_map(cam: np.ndarray, class_index: int) -> np.ndarray:
    """The h x w map of one class from a page's h x w x classes CAM output."""
    if cam.ndim != 3 or not 0 <= class_index < cam.shape[2]:
        raise ValueError(f"CAM of shape {cam.shape} has no class {class_index}")
    return cam[:, :, class_index]


def save_overlay(page: Image.Image, cam: np.ndarray, class_index: int, spec: InputSpec, path: Path) -> Path:
    """Write the overlay PNG for the predicted class (atomically) and return its path."""
    image = overlay_image(preview(page, OVERLAY_SIDE), class_map(cam, class_index), spec)
    return save_png(image, path)


def cell_votes(cam: np.ndarray, page_size: tuple[int, int], spec: InputSpec) -> np.ndarray:
    """For each cell of the page's part of an h x w x classes CAM, the softmax over classes of that
    cell's class evidence: what the cell alone votes for, 0..1. A fixed scale, comparable between
    pages and models (never stretched to each page's range)."""
    if cam.ndim != 3:
        raise ValueError(f"a CAM of shape {cam.shape} is not h x w x classes")
    rows, cols = page_cells(cam.shape, page_size, spec)
    z = np.nan_to_num(np.asarray(cam[rows, cols, :], dtype=np.float64))
    z = np.exp(z - z.max(axis=2, keepdims=True))
    return z / z.sum(axis=2, keepdims=True)


def save_cam_cells(
    cam: np.ndarray, class_names: list[str], page_size: tuple[int, int], spec: InputSpec, path: Path
) -> Path:
    """Write the page's cell votes per class as a small JSON file (the review page draws and blends
    the heat map itself, with a legend and an opacity control). Atomic."""
    votes = cell_votes(cam, page_size, spec)
    data = {
        "format": 1,
        "scale": "cell vote: softmax over the classes of one cell's class evidence, 0..1",
        "rows": int(votes.shape[0]),
        "cols": int(votes.shape[1]),
        "votes": {name: np.round(votes[:, :, i], 3).tolist() for i, name in enumerate(class_names)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)
    return path


def save_png(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    image.save(tmp, format="PNG", compress_level=PNG_LEVEL)
    tmp.replace(path)
    return path


def preview(page: Image.Image, max_side: int) -> Image.Image:
    """The page scaled so its longest side is at most ``max_side`` (never enlarged)."""
    w, h = page.size
    scale = min(1.0, max_side / max(w, h))
    if scale >= 1.0:
        return page.copy()
    return page.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
