"""PDF pages rendered by PDFium: the code that runs inside the render process (or, unbounded, in-process).

:class:`PdfPages` opens a PDF, tells a page's size in points and the resolution of the scan it holds,
and renders a page at a scale as RGB bytes. ``python -m worker.pdfchild PARENT_PID MEMORY_MB`` serves
:class:`PdfPages` over stdin/stdout to :mod:`worker.pdfrender` under an address-space limit (RLIMIT_AS),
so a PDF that makes PDFium grow without bound ends this small process, not the worker.

Protocol: one JSON request per line on stdin; one JSON answer per line on stdout, followed for a rendered
page by exactly ``stride * height`` bytes of pixels, and for an embedded JPEG by its ``bytes``. This
module imports only pypdfium2 and the standard library: the process starts in about 60 ms at about 27 MB
of address space.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import resource
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

POINTS_PER_INCH = 72.0
NO_IMAGE_DPI = 150.0  # the size given to a page that holds no scan (limits.PDF_DPI)
SCAN_DPI_RANGE = (36.0, 1200.0)
OBJECTS_LOOKED_AT = 64  # a scan's image is among a page's first objects; never walk a hostile page's tree
PARENT_CHECK_S = 1.0
COVER_SLACK_PT = 1.0  # an embedded scan fills the page when its edges are within a point of the page's
JPEG_SPACES = frozenset(
    {
        pdfium_c.FPDF_COLORSPACE_DEVICEGRAY,
        pdfium_c.FPDF_COLORSPACE_DEVICERGB,
        pdfium_c.FPDF_COLORSPACE_ICCBASED,
    }
)


class RenderFailed(Exception):
    """A page PDFium cannot render; ``memory`` when an allocation failed."""

    def __init__(self, reason: str, memory: bool = False) -> None:
        super().__init__(reason)
        self.memory = memory


@dataclass(frozen=True)
class PageGeometry:
    points: tuple[float, float]  # (width, height) as shown, 1/72 inch
    dpi: float  # of the largest image covering most of the page; NO_IMAGE_DPI if none

    @property
    def pixels(self) -> tuple[int, int]:
        """(width, height) of the page at its scan resolution."""
        w, h = self.points
        return max(1, round(w * self.dpi / POINTS_PER_INCH)), max(1, round(h * self.dpi / POINTS_PER_INCH))


def _scan_dpi(page: pdfium.PdfPage, points: tuple[float, float]) -> float:
    """The resolution of the image that covers most of the page (a scan), from its pixels and extent."""
    area = points[0] * points[1]
    best = 0.0
    objects = page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2)
    for obj in itertools.islice(objects, OBJECTS_LOOKED_AT):
        left, bottom, right, top = obj.get_bounds()
        extent = (right - left) * (top - bottom)
        if extent < 0.25 * area:
            continue
        px_w, px_h = obj.get_px_size()
        dpi = math.sqrt(px_w * px_h / extent) * POINTS_PER_INCH
        best = max(best, dpi)
    if not best:
        return NO_IMAGE_DPI
    return min(max(best, SCAN_DPI_RANGE[0]), SCAN_DPI_RANGE[1])


def _covers(bounds: tuple[float, float, float, float], box: tuple[float, float, float, float]) -> bool:
    slack = COVER_SLACK_PT
    return all(abs(a - b) <= slack for a, b in zip(bounds, box, strict=True))


def _single_jpeg(page: pdfium.PdfPage) -> bytes:
    """The raw DCTDecode stream of a page whose one object is an upright JPEG image filling the page
    (what a scanner writes), in grey or RGB; empty bytes for any other page, which is rendered. What
    PDFium would draw is then that JPEG, so the decoder may decode it directly at the scale it needs (DCT
    scaling) instead of rendering the page. PDFium's API does not show an image's /Decode array or soft
    mask; scanners write neither on a JPEG page, and a page that had one would be decoded without it."""
    if page.get_rotation() % 360:
        return b""
    objects = list(itertools.islice(page.get_objects(max_depth=1), 2))
    if len(objects) != 1 or objects[0].type != pdfium_c.FPDF_PAGEOBJ_IMAGE:
        return b""
    image = objects[0]
    assert isinstance(image, pdfium.PdfImage)
    if image.get_filters() != ["DCTDecode"]:
        return b""
    a, b, c, d, _, _ = image.get_matrix().get()
    if b or c or a <= 0 or d <= 0:  # turned, mirrored or flipped: PDFium draws it otherwise
        return b""
    meta = image.get_metadata()
    if meta.colorspace not in JPEG_SPACES or meta.bits_per_pixel not in (8, 24):
        return b""
    if not _covers(image.get_bounds(), page.get_cropbox()):
        return b""
    return bytes(image.get_data(decode_simple=False))


class PdfPages:
    """One open PDF; pages rendered one at a time."""

    def __init__(self, path: str) -> None:
        try:
            self.pdf = pdfium.PdfDocument(path)
        except pdfium.PdfiumError as exc:
            raise RenderFailed(f"corrupt or encrypted PDF ({exc})") from exc
        self.count = len(self.pdf)

    def geometry(self, index: int) -> PageGeometry:
        try:
            page = self.pdf[index]
        except pdfium.PdfiumError as exc:
            raise RenderFailed(f"PDF page cannot be read ({exc})") from exc
        try:
            points = page.get_size()
            return PageGeometry(points, _scan_dpi(page, points))
        except pdfium.PdfiumError as exc:
            raise RenderFailed(f"PDF page cannot be read ({exc})") from exc
        finally:
            page.close()

    def embedded_jpeg(self, index: int) -> bytes:
        """The JPEG stream of page ``index`` when the page is one scan and nothing else (see
        :func:`_single_jpeg`); empty bytes otherwise."""
        try:
            page = self.pdf[index]
        except pdfium.PdfiumError as exc:
            raise RenderFailed(f"PDF page cannot be read ({exc})") from exc
        try:
            return _single_jpeg(page)
        except pdfium.PdfiumError:
            return b""  # rendered instead, where PDFium says what is wrong
        finally:
            page.close()

    def render(self, index: int, scale: float) -> tuple[int, int, int, bytes]:
        """(width, height, stride, RGB bytes) of page ``index`` at ``scale`` pixels per point."""
        try:
            page = self.pdf[index]
        except pdfium.PdfiumError as exc:
            raise RenderFailed(f"PDF page cannot be read ({exc})") from exc
        try:
            bitmap = page.render(scale=scale, rev_byteorder=True)
            if bitmap.n_channels != 3:
                raise RenderFailed(f"unexpected bitmap of {bitmap.n_channels} channels")
            return bitmap.width, bitmap.height, bitmap.stride, bytes(bitmap.buffer)
        except MemoryError as exc:
            raise RenderFailed("out of memory", memory=True) from exc
        except pdfium.PdfiumError as exc:
            raise RenderFailed(f"PDF page cannot be rendered ({exc})", memory="bitmap" in str(exc)) from exc
        finally:
            page.close()

    def close(self) -> None:
        self.pdf.close()


def _answer(out: BinaryIO, head: dict[str, Any], payload: bytes = b"") -> None:
    out.write(json.dumps(head).encode() + b"\n")
    if payload:
        out.write(payload)
    out.flush()


def _handle(request: dict[str, Any], state: dict[str, PdfPages], out: BinaryIO) -> None:
    op = request.get("op")
    if op == "open":
        if "pdf" in state:
            state.pop("pdf").close()
        state["pdf"] = PdfPages(str(request["path"]))
        _answer(out, {"ok": True, "pages": state["pdf"].count})
    elif op == "geometry":
        geometry = state["pdf"].geometry(int(request["index"]))
        _answer(out, {"ok": True, "points": list(geometry.points), "dpi": geometry.dpi})
    elif op == "render":
        w, h, stride, data = state["pdf"].render(int(request["index"]), float(request["scale"]))
        _answer(out, {"ok": True, "width": w, "height": h, "stride": stride}, data)
    elif op == "jpeg":
        data = state["pdf"].embedded_jpeg(int(request["index"]))
        _answer(out, {"ok": True, "bytes": len(data)}, data)
    elif op == "close":
        if "pdf" in state:
            state.pop("pdf").close()
        _answer(out, {"ok": True})
    else:
        _answer(out, {"ok": False, "reason": f"unknown request {op!r}"})


def serve(source: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until stdin closes."""
    state: dict[str, PdfPages] = {}
    for line in source:
        try:
            _handle(json.loads(line), state, out)
        except RenderFailed as exc:
            _answer(out, {"ok": False, "reason": str(exc), "memory": exc.memory})
        except MemoryError:
            _answer(out, {"ok": False, "reason": "out of memory", "memory": True})
        except Exception as exc:  # a hostile file raises anything; the parent names the reason
            _answer(out, {"ok": False, "reason": f"{type(exc).__name__}: {exc}", "memory": False})


def _watch_parent(parent_pid: int) -> None:
    """End this process once its parent is gone (PDFium runs without the GIL, so this thread runs)."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _bound_process(parent_pid: int, memory_mb: int) -> None:
    """Die with the parent, and never hold more than ``memory_mb`` of address space."""
    if os.getppid() != parent_pid:
        sys.exit(0)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> None:
    _bound_process(int(argv[0]), int(argv[1]))
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main(sys.argv[1:])
