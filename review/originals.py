"""A page of the received file at its scanned resolution, for the review page's "original" view.

The page is decoded by the worker's own decoder (:func:`worker.imaging.preview_pages`): the decode
limits of the ``DOCSORT_*`` settings (pixels, bytes, pages), a PDF page rendered in the bounded render
process, a scanned PDF page's JPEG decoded as it is. A raster page (PNG, JPEG, a TIFF frame, ...) comes
at its own size, a scanned PDF page at its scan resolution, a PDF page without a scan at the worker's
PDF resolution (``worker.limits.PDF_DPI``); nothing is enlarged, and a page longer than
:data:`ORIGINAL_MAX_SIDE` is reduced to it. The JPEG is made once and kept in the review directory's
``originals/`` folder, named by the file's content (sha256) and the page number.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from review.settings import ReviewSettings
from schema.logs import get_logger
from worker.imaging import DecodeLimits, UnreadableImage, preview_pages, release_freed_memory
from worker.settings import load_worker_settings

ORIGINAL_MAX_SIDE = 10_000  # a 600 dpi A3 scan is 9921 px long
ORIGINAL_QUALITY = 90
ORIGINALS = "originals"
log = get_logger(__name__)


class OriginalMissing(Exception):
    """The original of a page cannot be shown; ``reason`` names the file and why (``status``: 404 or 422)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def decode_limits(settings: ReviewSettings) -> DecodeLimits:
    """The worker's decode limits, from the same ``DOCSORT_*`` settings the worker reads."""
    return load_worker_settings(**settings.model_dump()).decode_limits()


_making: dict[Path, threading.Lock] = {}
_making_guard = threading.Lock()


def _lock_for(target: Path) -> threading.Lock:
    """One lock per JPEG being made: two operators asking at once decode the page once."""
    with _making_guard:
        return _making.setdefault(target, threading.Lock())


def original_page(
    settings: ReviewSettings, stored_path: str | None, sha256: str, page_number: int, filename: str
) -> Path:
    """The JPEG of page ``page_number`` of the received file ``stored_path`` at its scanned resolution,
    made on first use (atomically) in the review directory's ``originals/``; :class:`OriginalMissing`
    (naming the file and the reason) if it cannot be."""
    name = filename or "an untitled file"
    if not stored_path:
        raise OriginalMissing(f"the received file of {name} is not kept (no stored path)", 404)
    target = settings.dir("review") / ORIGINALS / f"{sha256}-p{page_number}.jpg"
    try:
        with _lock_for(target):
            if not target.exists():
                _make(Path(stored_path), page_number, target, decode_limits(settings))
    finally:
        with _making_guard:
            _making.pop(target, None)
    return target


def _make(source: Path, page_number: int, target: Path, limits: DecodeLimits) -> None:
    try:
        found = next(iter(preview_pages(source, {page_number}, ORIGINAL_MAX_SIDE, limits=limits)), None)
    except UnreadableImage as exc:
        status = 404 if exc.reason == "file not found" else 422
        log.warning("review.original_unreadable", path=str(source), reason=exc.reason)
        raise OriginalMissing(f"{source}: {exc.reason}", status) from exc
    if found is None:
        raise OriginalMissing(f"{source}: the file has no page {page_number}", 422)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    found[1].save(tmp, format="JPEG", quality=ORIGINAL_QUALITY)
    tmp.replace(target)
    log.info("review.original_made", path=str(source), page=page_number, size=found[1].size)
    del found
    release_freed_memory()  # a whole scan's buffers: not kept by the web process
