"""What the review page sends of a page: a WebP of the stored page image (about 100-300 KB for an A4
page at review size, against 1-2 MB of PNG), made once beside it; a small JPEG thumbnail for the
page strip and the grid (at most :data:`THUMB_SIDE` px, a few KB), made once beside it too; and the
CAM's cell votes: the JSON file a decision records as its ``cam_path``, or, for decisions recorded
with a heat map image, the JSON beside that image."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from review.files import VOTES_TYPES, review_file
from worker.explain import cam_cells_path

WEBP_QUALITY = 80
THUMB_SIDE = 256  # longest side of a thumbnail, pixels
THUMB_QUALITY = 75


def web_page(review_dir: Path, stored: str | None) -> Path | None:
    """The WebP of a stored page image (made on first use, atomically; remade if the image is newer)."""
    source = review_file(review_dir, stored)
    if source is None or source.suffix.lower() in (".webp", ".jpg", ".jpeg"):
        return source
    target = source.with_suffix(".webp")
    if _fresh(target, source):
        return target
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    with Image.open(source) as image:
        image.convert("RGB").save(tmp, format="WEBP", quality=WEBP_QUALITY, method=4)
    tmp.replace(target)
    return target


def _fresh(target: Path, source: Path) -> bool:
    return target.exists() and target.stat().st_mtime >= source.stat().st_mtime


def thumbnail(review_dir: Path, stored: str | None) -> Path | None:
    """A JPEG of the stored page image (grey for a grey one), longest side at most THUMB_SIDE, made on
    first use beside it (atomically; remade if the image is newer); None if there is no stored image."""
    source = review_file(review_dir, stored)
    if source is None:
        return None
    target = source.with_name(f"{source.stem}-thumb.jpg")
    if _fresh(target, source):
        return target
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    with Image.open(source) as image:
        image.draft("RGB", (THUMB_SIDE, THUMB_SIDE))  # a JPEG source is decoded reduced
        small = image.convert("L" if image.mode == "L" else "RGB")  # a grey page's thumbnail stays grey
        small.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
        small.save(tmp, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    tmp.replace(target)
    return target


def cam_votes_file(review_dir: Path, cam_stored: str | None) -> Path | None:
    """The cell votes file a decision's recorded ``cam_path`` leads to: the JSON itself, or the one
    beside a CAM overlay image recorded by earlier versions; None if there is none in ``review_dir``."""
    votes = review_file(review_dir, cam_stored, VOTES_TYPES)
    if votes is not None:
        return votes
    overlay = review_file(review_dir, cam_stored)
    return None if overlay is None else review_file(review_dir, str(cam_cells_path(overlay)), VOTES_TYPES)


def cam_cells(review_dir: Path, cam_stored: str | None) -> dict[str, Any] | None:
    """The CAM's cell votes (:func:`worker.cam.save_cam_cells`) a decision's ``cam_path`` leads to, if any."""
    path = cam_votes_file(review_dir, cam_stored)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == 1 else None
