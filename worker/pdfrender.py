"""PDF pages for the decoder, rendered in a separate process that holds a memory and a time limit.

PDFium is the one decoder whose work does not follow from a file's header: a few kilobytes of nested
form XObjects can make it draw billions of paths. So pages are rendered by ``worker.pdfchild`` in a
child process limited to ``pdf_render_memory_mb`` of address space (RLIMIT_AS), and each page must
come back within ``pdf_page_timeout_s`` or the child is killed. A child lives on between files (it
starts in ~60 ms) and is replaced once it holds more than ``pdf_renderer_keep_mb`` after a file, or
after any failure; it dies with its parent. ``pdf_isolated=False`` renders in the calling process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.limits import DecodeLimits
from worker.pdfchild import PageGeometry, PdfPages, RenderFailed
from worker.pixels import UnreadableImage

HEADER_MAX = 64 * 1024
DirectDecode = Callable[[bytes, PageGeometry], "tuple[np.ndarray, np.ndarray | None] | None"]
READ_CHUNK = 1 << 20


@dataclass
class RenderedPage:
    number: int  # 1-based
    geometry: PageGeometry
    rgb: np.ndarray  # HxWx3 uint8 at the scale asked for (or HxW grey, decoded direct); empty on ``error``
    preview: np.ndarray | None = None  # rendered again at the preview's scale, when that is larger
    error: str | None = None  # why this page could not be rendered (with ``page_errors``)


class ChildDied(Exception):
    """The render process ended or stopped answering; ``how`` says which."""

    def __init__(self, how: str, timed_out: bool = False) -> None:
        super().__init__(how)
        self.how = how
        self.timed_out = timed_out


def _python_path() -> str:
    """The child imports this same ``worker`` package, wherever it was imported from."""
    root = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))


class RenderChild:
    """One render process and its pipes."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker.pdfchild", str(os.getpid()), str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": _python_path()},
        )
        self.buffer = bytearray()

    def call(self, request: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], bytes | bytearray]:
        """Send one request; its answer and, for a rendered page, the pixel bytes."""
        assert self.proc.stdin is not None
        deadline = time.monotonic() + timeout_s
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:  # ValueError: its pipe was closed
            raise ChildDied(self._ending()) from exc
        head = json.loads(self._read_line(deadline))
        size = int(head.get("bytes", int(head.get("stride", 0)) * int(head.get("height", 0))))
        size = size if head.get("ok") else 0
        return head, self._read_exact(size, deadline) if size else b""

    def _fill(self, deadline: float) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        if not ready:
            raise ChildDied("no answer in time", timed_out=True)
        chunk = os.read(fd, READ_CHUNK)
        if not chunk:
            raise ChildDied(self._ending())
        self.buffer += chunk

    def _read_line(self, deadline: float) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) > HEADER_MAX:
                raise ChildDied("an answer without an end")
            self._fill(deadline)
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer = bytearray(rest)
        return line

    def _read_exact(self, size: int, deadline: float) -> bytearray:
        """``size`` bytes read straight into one buffer (a rendered page is copied once, not thrice)."""
        assert self.proc.stdout is not None
        out = bytearray(size)
        view = memoryview(out)
        have = min(size, len(self.buffer))
        view[:have] = self.buffer[:have]
        del self.buffer[:have]
        fd = self.proc.stdout.fileno()
        while have < size:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise ChildDied("no answer in time", timed_out=True)
            got = os.readv(fd, [view[have:]])
            if not got:
                raise ChildDied(self._ending())
            have += got
        return out

    def _ending(self) -> str:
        code = self.proc.wait(timeout=5)
        if code < 0:
            return f"ended by signal {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def rss_mb(self) -> float:
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0.0
        line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), "VmRSS: 0 kB")
        return int(line.split()[1]) / 1024

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a request still buffered for a dead process
                    pipe.close()


class ChildPool:
    """The render processes of this process: ``idle`` ones wait for the next file, ``busy`` ones render
    one. A forked process starts its own (its parent's belong to the parent)."""

    MAX_IDLE = 4

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[RenderChild] = []
        self.busy: list[RenderChild] = []
        self.pid = os.getpid()

    def _forked(self) -> None:
        if self.pid != os.getpid():
            self.idle, self.busy, self.pid = [], [], os.getpid()

    def take(self, memory_mb: int) -> RenderChild:
        stale: list[RenderChild] = []
        with self.lock:
            self._forked()
            found = None
            while self.idle and found is None:
                child = self.idle.pop()
                if child.memory_mb == memory_mb and child.proc.poll() is None:
                    found = child
                else:
                    stale.append(child)
        for child in stale:
            child.kill()
        found = found or RenderChild(memory_mb)
        with self.lock:
            self.busy.append(found)
        return found

    def give_back(self, child: RenderChild, keep_mb: int) -> None:
        """Keep ``child`` for the next file unless it ended or holds more than ``keep_mb``."""
        keep = child.proc.poll() is None and child.rss_mb() <= keep_mb
        with self.lock:
            self._drop(child)
            if keep and self.pid == os.getpid() and len(self.idle) < self.MAX_IDLE:
                self.idle.append(child)
                return
        child.kill()

    def discard(self, child: RenderChild) -> None:
        with self.lock:
            self._drop(child)
        child.kill()

    def _drop(self, child: RenderChild) -> None:
        if child in self.busy:
            self.busy.remove(child)

    def close(self) -> None:
        with self.lock:
            self._forked()
            idle, self.idle = self.idle, []
        for child in idle:
            child.kill()


POOL = ChildPool()
atexit.register(POOL.close)


def close_renderers() -> None:
    """End every idle render process of this process (they also end when it does)."""
    POOL.close()


class _Isolated:
    """:class:`PdfPages`'s interface, answered by a render process."""

    def __init__(self, path: Path, limits: DecodeLimits) -> None:
        self.limits = limits
        self.child: RenderChild | None = POOL.take(limits.pdf_render_memory_mb)
        self.reusable = True
        try:
            self.count = int(self._call({"op": "open", "path": str(path)})["pages"])
        except BaseException:
            self.close()
            raise

    def _call(
        self, request: dict[str, Any], payload: list[bytes | bytearray] | None = None
    ) -> dict[str, Any]:
        if self.child is None:
            raise ChildDied("the render process was ended")
        try:
            head, data = self.child.call(request, self.limits.pdf_page_timeout_s)
        except ChildDied:
            POOL.discard(self.child)
            self.child = None
            raise
        if not head.get("ok"):
            memory = bool(head.get("memory"))
            self.reusable = self.reusable and not memory
            raise RenderFailed(str(head.get("reason")), memory)
        if payload is not None:
            payload.append(data)
        return head

    def geometry(self, index: int) -> PageGeometry:
        head = self._call({"op": "geometry", "index": index})
        w, h = head["points"]
        return PageGeometry((float(w), float(h)), float(head["dpi"]))

    def render(self, index: int, scale: float) -> tuple[int, int, int, bytes | bytearray]:
        data: list[bytes | bytearray] = []
        head = self._call({"op": "render", "index": index, "scale": scale}, data)
        return int(head["width"]), int(head["height"]), int(head["stride"]), data[0]

    def embedded_jpeg(self, index: int) -> bytes:
        data: list[bytes | bytearray] = []
        self._call({"op": "jpeg", "index": index}, data)
        return bytes(data[0])

    def close(self) -> None:
        """Hand the process back for the next file, or end it after a failure it may not survive."""
        if self.child is None:
            return
        child, self.child = self.child, None
        if self.reusable:
            try:
                head, _ = child.call({"op": "close"}, self.limits.pdf_page_timeout_s)
            except ChildDied:
                head = {}
            if head.get("ok"):
                POOL.give_back(child, self.limits.pdf_renderer_keep_mb)
                return
        POOL.discard(child)


def _rgb(width: int, height: int, stride: int, data: bytes | bytearray) -> np.ndarray:
    rows = np.frombuffer(data, np.uint8).reshape(height, stride)
    return rows[:, : width * 3].reshape(height, width, 3)


def _refusal(path: Path, number: int, exc: Exception, limits: DecodeLimits) -> UnreadableImage:
    memory = f"the render memory limit of {limits.pdf_render_memory_mb} MB (DOCSORT_PDF_RENDER_MEMORY_MB)"
    what = f"PDF page {number}" if number else "the PDF"
    if isinstance(exc, ChildDied) and exc.timed_out:
        return UnreadableImage(
            path,
            f"{what} took longer than {limits.pdf_page_timeout_s:g} s to render "
            "(the limit, DOCSORT_PDF_PAGE_TIMEOUT_S)",
        )
    if isinstance(exc, ChildDied):
        return UnreadableImage(path, f"{what} stopped the renderer ({exc.how}): it needs more than {memory}")
    if isinstance(exc, RenderFailed) and exc.memory:
        return UnreadableImage(path, f"{what} needs more than {memory}")
    return UnreadableImage(path, str(exc) if number == 0 else f"{what}: {exc}")


def pdf_pages(
    path: Path,
    limits: DecodeLimits,
    scale_for: Callable[[PageGeometry], float],
    preview_scale_for: Callable[[PageGeometry], float] | None = None,
    only: set[int] | None = None,
    page_errors: bool = False,
    direct: DirectDecode | None = None,
) -> Generator[RenderedPage, None, None]:
    """Each page of a PDF rendered at ``scale_for(its geometry)`` pixels per point, one at a time; with
    ``preview_scale_for``, rendered a second time at that scale too when it is larger (``preview``);
    with ``only``, just those page numbers. With ``page_errors``, a page whose content PDFium cannot
    render comes as a page with its ``error`` and the next pages follow; a page over the memory or time
    limit still fails the file (its renderer is gone).

    With ``direct``, a page that is one upright JPEG filling the page (a scan) is not rendered: its JPEG
    stream, handed out by the render process, goes to ``direct(stream, geometry)``, which returns (pixels,
    preview or None) decoded from it, or None to have the page rendered after all."""
    number = 0
    try:
        pages: PdfPages | _Isolated = _Isolated(path, limits) if limits.pdf_isolated else PdfPages(str(path))
    except (ChildDied, RenderFailed) as exc:
        raise _refusal(path, number, exc, limits) from exc
    try:
        if pages.count == 0:
            raise UnreadableImage(path, "PDF has no pages")
        if pages.count > limits.max_pages:
            raise UnreadableImage(
                path, f"{pages.count} pages exceeds the limit of {limits.max_pages} (DOCSORT_MAX_PAGES)"
            )
        for index in range(pages.count):
            number = index + 1
            if only is not None and number not in only:
                continue
            geometry = pages.geometry(index)
            stream = pages.embedded_jpeg(index) if direct is not None else b""
            decoded = direct(stream, geometry) if direct is not None and stream else None
            if decoded is not None:
                yield RenderedPage(number, geometry, decoded[0], decoded[1])
                continue
            largest = limits.pdf_max_side / max(*geometry.points, 1.0)
            scale = min(scale_for(geometry), largest)
            try:
                page = RenderedPage(number, geometry, _rgb(*pages.render(index, scale)))
            except RenderFailed as exc:
                if not page_errors or exc.memory:
                    raise
                yield RenderedPage(number, geometry, np.zeros((0, 0, 3), np.uint8), error=str(exc))
                continue
            if preview_scale_for is not None and min(preview_scale_for(geometry), largest) > scale:
                page.preview = _rgb(*pages.render(index, min(preview_scale_for(geometry), largest)))
            yield page
    except (ChildDied, RenderFailed) as exc:
        raise _refusal(path, number, exc, limits) from exc
    finally:
        pages.close()
