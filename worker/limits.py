"""The budget every input is decoded within: pixels, bytes and pages per file, PDF render memory and time.

:class:`DecodeLimits` is what :mod:`worker.imaging` takes; ``WorkerSettings.decode_limits()`` builds it
from the ``DOCSORT_*`` settings of the same names, whose defaults are the constants here. Each refusal
names the file and the limit (and its setting) it broke.

Bytes per pixel are what Pillow holds a decoded page in: 1 for bilevel, grey and palette pages, 2 for
16-bit grey, 4 for everything else (RGB is stored as 4 bytes a pixel, like RGBA, CMYK, 32-bit integer
and float). A page's decode holds its decoded bytes plus one 8-bit copy (1 byte a pixel grey, 3 colour),
converted strip by strip: at most about twice the decoded bytes (measured in
tests/faults/test_decode_memory.py). A JPEG's bytes are counted after its DCT scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024
MAX_PAGE_PIXELS = 120_000_000  # a 600 dpi A3 scan is ~70 Mpx
MAX_PAGE_MB = 320  # an A3 page at 600 dpi in colour is 278 MB decoded
MAX_PAGES = 500
PDF_RENDER_MEMORY_MB = 1024
PDF_PAGE_TIMEOUT_S = 30.0
PDF_RENDERER_KEEP_MB = 256
PDF_MAX_SIDE = 4000  # longest side of a rendered PDF page, pixels
PDF_DPI = 150  # a page rendered whole (iter_pages), and the size of a PDF page that has no image

ONE_BYTE_MODES = frozenset({"1", "L", "P"})
TWO_BYTE_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


def bytes_per_pixel(mode: str) -> int:
    """Bytes a pixel of ``mode`` takes once Pillow has decoded it."""
    if mode in ONE_BYTE_MODES:
        return 1
    if mode in TWO_BYTE_MODES:
        return 2
    return 4


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds of one file's decode. ``pdf_isolated`` False renders PDFs in the calling process (unbounded)."""

    max_page_pixels: int = MAX_PAGE_PIXELS
    max_page_mb: int = MAX_PAGE_MB
    max_pages: int = MAX_PAGES
    pdf_render_memory_mb: int = PDF_RENDER_MEMORY_MB
    pdf_page_timeout_s: float = PDF_PAGE_TIMEOUT_S
    pdf_renderer_keep_mb: int = PDF_RENDERER_KEEP_MB
    pdf_max_side: int = PDF_MAX_SIDE
    pdf_isolated: bool = True

    @property
    def max_page_bytes(self) -> int:
        return self.max_page_mb * MB


DEFAULT_LIMITS = DecodeLimits()
