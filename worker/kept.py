"""Review previews from the first decode: a job's pages keep reduced pixels until the explain step.

The pages sent to review are known only after inference. A page that its first decode held at no less
than the review preview's size (a PNG, TIFF, BMP, WebP or GIF page is decoded whole; a JPEG or PDF page
decoded for a preview of the page marks) keeps its pixels reduced by a whole factor
(:func:`worker.pixels.preview_source`: at most 2x the preview along each side, an A4 page at 300 dpi
1240 x 1754, 2.1 MiB grey, 6.2 MiB colour); the explain step makes the review image from them, the same
pixels a second decode would give (:func:`worker.pixels.preview_of`), and every page's kept pixels are
dropped as soon as its file is assembled, so an automatically routed page's go at once; the review
images of a file are made and written one at a time.

Memory is bounded per job: a :class:`PreviewKeep` keeps pages until their kept pixels would pass
``max_bytes`` (``DOCSORT_REVIEW_KEEP_MB``, 64 by default: 30 grey or 10 colour A4 pages at 300 dpi);
the pages past it, and the pages decoded smaller than the preview (a JPEG or a PDF page decoded at
1/8 for the model), are decoded a second time at the preview's size if they go to review.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from worker.pixels import SWAPS_SIDES, preview_of, preview_size, preview_source, serves


@dataclass(frozen=True)
class KeptPixels:
    """A page's pixels reduced for its review preview, in their stored orientation."""

    pixels: np.ndarray  # uint8 HxW or HxWx3
    orientation: int  # EXIF orientation still to apply

    def preview(self, size: tuple[int, int]) -> Image.Image:
        """The preview of ``size`` (oriented width, height), grey for a grey page: what a decode at that
        size gives."""
        return preview_of(self.pixels, size, self.orientation)


class PreviewKeep:
    """What one job's decode keeps for review previews of longest side ``side``: at most ``max_bytes``
    of kept pixels in all (shared by the job's decode threads)."""

    def __init__(self, side: int, max_bytes: int) -> None:
        self.side = side
        self.max_bytes = max_bytes
        self.used = 0  # bytes kept
        self.pages = 0  # pages kept
        self.over = 0  # pages that would have passed max_bytes (decoded again if reviewed)
        self._lock = threading.Lock()

    def take(self, pixels: np.ndarray, size: tuple[int, int], orientation: int = 1) -> KeptPixels | None:
        """The reduced pixels of a page of ``size`` (its own oriented width, height) decoded as ``pixels``
        (stored orientation), or None when they are smaller than the preview or past the budget."""
        h, w = pixels.shape[:2]
        decoded = (h, w) if orientation in SWAPS_SIDES else (w, h)
        wanted = preview_size(self.side, *size)
        if not serves(decoded, wanted):
            return None
        if self.used >= self.max_bytes:  # spent: no reduce for a page that cannot be kept
            with self._lock:
                self.over += 1
            return None
        source = preview_source(pixels, wanted, orientation)
        with self._lock:
            if self.used + source.nbytes > self.max_bytes:
                self.over += 1
                return None
            self.used += source.nbytes
            self.pages += 1
        return KeptPixels(source, orientation)
