"""Pages made from the received file, for the review page: the original at its scanned resolution, and
the review image of a page whose worker left it to be made here.

The page is decoded by the worker's own decoder (:func:`worker.imaging.preview_pages`): the decode
limits of the ``DOCSORT_*`` settings (pixels, bytes, pages), a PDF page rendered in the bounded render
process, a scanned PDF page's JPEG decoded as it is. Nothing is enlarged.

- **The original** (the "O" view): a raster page (PNG, JPEG, a TIFF frame, ...) at its own size, a
  scanned PDF page at its scan resolution, a PDF page without a scan at the worker's PDF resolution
  (``worker.limits.PDF_DPI``); a page longer than :data:`ORIGINAL_MAX_SIDE` is reduced to it. Made
  once, as a JPEG in the review directory's ``originals/`` folder, named by the file's content (sha256)
  and the page number.
- **The review image** of a page decoded smaller than it by the worker (a JPEG or a PDF page, decoded
  at 1/8 for the model; see :mod:`worker.explain`): made on first use at the worker's review size
  (``DOCSORT_REVIEW_MAX_SIDE``), as the worker would have made it (:func:`worker.cam.save_image`), at
  the path the worker recorded; :func:`make_missing_images` makes those of the waiting pages ahead of
  the operators.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from sqlalchemy.orm import Session

from review.files import review_file
from review.queue import pending_select
from review.settings import ReviewSettings
from schema.logs import get_logger
from schema.tables import Document, Page, Prediction, RoutingDecision
from worker.cam import save_image
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
    target = settings.dir("review") / ORIGINALS / f"{sha256}-p{page_number}.jpg"
    return _made(settings, stored_path, page_number, filename, target, ORIGINAL_MAX_SIDE, _save_original)


def review_image(
    settings: ReviewSettings, image_path: str | None, stored_path: str | None, page_number: int, filename: str
) -> Path | None:
    """A review page's image: the one saved, else made now from the received file at review size where
    the worker recorded it; None when none is recorded (or it lies outside the review directory);
    :class:`OriginalMissing` when the received file cannot give it."""
    review_dir = settings.dir("review")
    found = review_file(review_dir, image_path)
    if found is not None or not image_path:
        return found
    target = Path(image_path) if Path(image_path).is_absolute() else review_dir / image_path
    root = review_dir.resolve()
    if not target.parent.resolve().is_relative_to(root) or target.suffix.lower() not in (".jpg", ".jpeg"):
        return None
    side = load_worker_settings(**settings.model_dump()).review_max_side
    return _made(settings, stored_path, page_number, filename, target, side, save_image)


PREWARM_LOOKAHEAD = 200  # the oldest waiting pages looked at by one sweep


def make_missing_images(session: Session, settings: ReviewSettings, most: int = 8) -> int:
    """Make up to ``most`` review images that the worker left to be made here, for the oldest pages
    waiting for review, so that the operators find them made; how many were made. A page whose file
    cannot give its image is skipped (its item page says why)."""
    rows = session.execute(
        pending_select(Page.image_path, Document.stored_path, Page.page_number, Document.filename)
        .where(Page.image_path.is_not(None))
        .order_by(RoutingDecision.decided_at, Prediction.id)
        .limit(PREWARM_LOOKAHEAD)
    ).all()
    review_dir, made = settings.dir("review"), 0
    for image_path, stored_path, page_number, filename in rows:
        if made >= most:
            break
        if review_file(review_dir, image_path) is not None:
            continue
        try:
            made += review_image(settings, image_path, stored_path, page_number, filename or "") is not None
        except OriginalMissing:
            continue
    return made


def _made(
    settings: ReviewSettings,
    stored_path: str | None,
    page_number: int,
    filename: str,
    target: Path,
    side: int,
    save: Callable[[Image.Image, Path], object],
) -> Path:
    name = filename or "an untitled file"
    if not stored_path:
        raise OriginalMissing(f"the received file of {name} is not kept (no stored path)", 404)
    try:
        with _lock_for(target):
            if not target.exists():
                _make(Path(stored_path), page_number, target, decode_limits(settings), side, save)
    finally:
        with _making_guard:
            _making.pop(target, None)
    return target


def _save_original(image: Image.Image, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    image.save(tmp, format="JPEG", quality=ORIGINAL_QUALITY)
    tmp.replace(target)


def _make(
    source: Path,
    page_number: int,
    target: Path,
    limits: DecodeLimits,
    side: int,
    save: Callable[[Image.Image, Path], object],
) -> None:
    try:
        found = next(iter(preview_pages(source, {page_number}, side, limits=limits)), None)
    except UnreadableImage as exc:
        status = 404 if exc.reason == "file not found" else 422
        log.warning("review.page_unreadable", path=str(source), reason=exc.reason)
        raise OriginalMissing(f"{source}: {exc.reason}", status) from exc
    if found is None:
        raise OriginalMissing(f"{source}: the file has no page {page_number}", 422)
    save(found[1], target)
    log.info("review.page_made", path=str(source), page=page_number, size=found[1].size, target=str(target))
    del found
    release_freed_memory()  # a whole scan's buffers: not kept by the web process
