"""Review files for the web: the page as a JPEG, and the CAM's cell votes per class as a small JSON file.

The map comes from the model's ``cam`` output (computed inside the graph from the GAP head's weights),
so no gradients are needed. It covers the model input; for a letterboxed input only the cells that
hold the page are kept, so the votes lie where the page content was. The review page draws them over
the page image in the browser (a canvas, with a legend and an opacity control): the CAM holds a few
dozen cells of information, so no image of it is written. The page image is a JPEG at
``PAGE_JPEG_QUALITY`` (encoded in a few milliseconds, where a PNG of the same page took 50-200 ms).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from schema.manifest import InputSpec

PAGE_JPEG_QUALITY = 85  # the page image: 200-300 kB for an A4 page at 1600 px
PNG_LEVEL = 1  # zlib level: images are written on the hot path; level 1 is several times faster


def content_box(page_size: tuple[int, int], spec: InputSpec) -> tuple[float, float, float, float]:
    """(top, left, bottom, right) of the page inside the model input, as fractions of the input."""
    if spec.resize == "stretch":
        return 0.0, 0.0, 1.0, 1.0
    w, h = page_size
    scale = min(spec.height / h, spec.width / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    top, left = (spec.height - new_h) // 2, (spec.width - new_w) // 2
    return top / spec.height, left / spec.width, (top + new_h) / spec.height, (left + new_w) / spec.width


def page_cells(shape: tuple[int, ...], page_size: tuple[int, int], spec: InputSpec) -> tuple[slice, slice]:
    """The rows and columns of a map of ``shape`` (h, w, ...) that cover the page's part of the input."""
    ch, cw = shape[0], shape[1]
    top, left, bottom, right = content_box(page_size, spec)
    r0, r1 = int(np.floor(top * ch)), max(int(np.ceil(bottom * ch)), int(np.floor(top * ch)) + 1)
    c0, c1 = int(np.floor(left * cw)), max(int(np.ceil(right * cw)), int(np.floor(left * cw)) + 1)
    return slice(r0, r1), slice(c0, c1)


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


def save_image(image: Image.Image, path: Path) -> Path:
    """Write ``image`` atomically, as its suffix says: ``.jpg`` (``PAGE_JPEG_QUALITY``; a grey page
    stays a grey JPEG: one channel to encode and store, shown the same) or ``.png``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        page = image if image.mode in ("L", "RGB") else image.convert("RGB")  # no copy of an L or RGB page
        page.save(tmp, format="JPEG", quality=PAGE_JPEG_QUALITY)
    else:
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
