"""A4 scan files and their ground truth: the realistic input for benchmarks and tests.

``generate_a4(out_dir, A4Options(...))`` writes single-document files (colour JPEG, bilevel G4 TIFF,
greyscale PNG, image PDF; TIFFs and PDFs of 2-4 pages when asked), blank pages, and batch files (one
PDF or multi-page TIFF holding several documents of 1-4 pages, with separator sheets between them:
blank, QR code or Code 128), and a ground-truth JSON that lists every file's documents (class and
pages), separator pages and their codes. Pages are written one at a time (a batch is never held whole)
by ``workers`` processes; each page depends only on the seed and its place, so the bytes are the same
whatever the number of workers.
"""

from __future__ import annotations

import ctypes
import io
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import pikepdf
from PIL import Image, TiffImagePlugin
from tqdm import tqdm

from docsort.synth import CLASSES, EPOCH, SynthError
from docsort.synth_a4 import SYMBOLOGIES, A4Page, a4_page, blank_page, separator_page

A4Format = Literal["jpg", "tif", "png", "pdf"]
A4_FORMATS: tuple[str, ...] = ("jpg", "tif", "png", "pdf")
MULTI_PAGE = ("tif", "pdf")
SEPARATORS = ("none", "blank", *SYMBOLOGIES)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


@dataclass(frozen=True)
class A4Options:
    pages: int = 200  # pages of single-document files
    seed: int = 0
    classes: tuple[str, ...] = CLASSES
    formats: tuple[str, ...] = A4_FORMATS
    dpi: int = 300
    multi_page: float = 0.0  # share of single-document files of 2-4 pages (TIFF or PDF)
    blank: int = 0  # files of one blank page
    batches: int = 0  # files holding several documents
    batch_documents: tuple[int, int] = (2, 6)
    separator: str = "qr"  # between the documents of a batch: none, blank, qr, code128
    batch_formats: tuple[str, ...] = MULTI_PAGE
    unlabelled: bool = False
    workers: int = 0  # 0: one per core

    def __post_init__(self) -> None:
        problems = [
            (self.pages < 0 or self.blank < 0 or self.batches < 0, "--pages, --blank and --batches >= 0"),
            (self.pages + self.blank + self.batches == 0, "nothing to write: --pages, --blank or --batches"),
            (not 50 <= self.dpi <= 600, f"--dpi {self.dpi}: choose 50 to 600"),
            (not 0.0 <= self.multi_page <= 1.0, f"--multi-page {self.multi_page}: a share from 0 to 1"),
            (bool(set(self.formats) - set(A4_FORMATS)) or not self.formats, "formats: jpg, tif, png, pdf"),
            (bool(set(self.batch_formats) - set(MULTI_PAGE)) or not self.batch_formats, "batch: tif, pdf"),
            (self.separator not in SEPARATORS, f"--separator {self.separator}: {', '.join(SEPARATORS)}"),
            (
                not 1 <= self.batch_documents[0] <= self.batch_documents[1],
                "--batch-documents LO-HI, 1<=LO<=HI",
            ),
            (
                self.batches > 0 and not self.unlabelled,
                "--batches needs --unlabelled (a batch mixes classes)",
            ),
            (bool(set(self.classes) - set(CLASSES)) or not self.classes, f"classes: {', '.join(CLASSES)}"),
        ]
        wrong = [message for bad, message in problems if bad]
        if wrong:
            raise SynthError("; ".join(wrong))


@dataclass(frozen=True)
class PagePlan:
    kind: str  # a class, "blank" or "separator"
    index: int  # the page's number among pages of its kind (its random generator)
    code: str | None = None  # a separator's code


@dataclass(frozen=True)
class FilePlan:
    name: str  # relative to the output folder
    fmt: str
    pages: tuple[PagePlan, ...]
    documents: tuple[tuple[str, tuple[int, ...]], ...]  # (class, 1-based page numbers)
    colour: bool | None = None


@dataclass
class A4Summary:
    out_dir: Path
    truth_path: Path
    files: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pages(self) -> int:
        return sum(f["pages"] for f in self.files)


class _Planner:
    """Deterministic file plans: page indices per kind, names, formats."""

    def __init__(self, opts: A4Options) -> None:
        self.opts = opts
        self.rng = np.random.default_rng([opts.seed, 44])
        self.counts: dict[str, int] = {}
        self.files = 0

    def page(self, kind: str, code: str | None = None) -> PagePlan:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return PagePlan(kind, self.counts[kind], code)

    def name(self, kind: str, n: int, fmt: str) -> str:
        self.files += 1
        if self.opts.unlabelled:
            return f"{'batch' if kind == 'batch' else 'scan'}-{self.files:05d}.{fmt}"
        return f"{kind}/{kind}-{n:05d}.{fmt}"

    def singles(self) -> Iterator[FilePlan]:
        opts, left, n = self.opts, self.opts.pages, 0
        multi = [f for f in opts.formats if f in MULTI_PAGE]
        while left > 0:
            n += 1
            kind = opts.classes[int(self.rng.integers(len(opts.classes)))]
            length = 1
            if multi and self.rng.random() < opts.multi_page:
                length = min(left, int(self.rng.integers(2, 5)))
            fmt = str(self.rng.choice(multi if length > 1 else list(opts.formats)))
            pages = tuple(self.page(kind) for _ in range(length))
            yield FilePlan(self.name(kind, n, fmt), fmt, pages, ((kind, tuple(range(1, length + 1))),))
            left -= length
        for b in range(opts.blank):
            fmt = str(self.rng.choice(list(opts.formats)))
            yield FilePlan(self.name("blank", b + 1, fmt), fmt, (self.page("blank"),), ())

    def batch(self, n: int) -> FilePlan:
        opts, pages, documents = self.opts, [], []
        lo, hi = opts.batch_documents
        for d in range(int(self.rng.integers(lo, hi + 1))):
            if d and opts.separator != "none":
                code = f"DOCSORT-SEP-{n:04d}-{d:02d}" if opts.separator != "blank" else None
                pages.append(self.page("blank" if code is None else "separator", code))
            kind = opts.classes[int(self.rng.integers(len(opts.classes)))]
            length = int(self.rng.integers(1, 5))
            documents.append((kind, tuple(range(len(pages) + 1, len(pages) + length + 1))))
            pages += [self.page(kind) for _ in range(length)]
        fmt = str(self.rng.choice(list(opts.batch_formats)))
        return FilePlan(
            self.name("batch", n, fmt), fmt, tuple(pages), tuple(documents), self.rng.random() < 0.5
        )


def plan_files(opts: A4Options) -> list[FilePlan]:
    planner = _Planner(opts)
    return [*planner.singles(), *(planner.batch(n + 1) for n in range(opts.batches))]


def render_page(opts: A4Options, page: PagePlan, colour: bool | None = None) -> A4Page:
    if page.kind == "blank":
        return blank_page(opts.seed, page.index, opts.dpi, colour)
    if page.kind == "separator":
        symbology = "qr" if opts.separator == "qr" else "code128"
        return separator_page(opts.seed, page.index, page.code or "", symbology, opts.dpi, colour)  # type: ignore[arg-type]
    return a4_page(opts.seed, page.kind, page.index, opts.dpi, colour)


# --- writing ----------------------------------------------------------------------------------------


def bilevel(page: A4Page) -> Image.Image:
    """A bilevel scan of the page: photos dithered, everything else cut between ink and paper."""
    grey = page.pixels if page.pixels.ndim == 2 else cv2.cvtColor(page.pixels, cv2.COLOR_RGB2GRAY)
    if page.kind == "photo":
        return Image.fromarray(grey, "L").convert("1")
    counts = np.cumsum(cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel())
    paper = int(np.searchsorted(counts, 0.9 * counts[-1]))
    return Image.fromarray(grey > paper * 0.6)


def _grey(page: A4Page) -> Image.Image:
    return page.image() if page.pixels.ndim == 2 else page.image().convert("L")


def _pdf_page(page: A4Page, fmt_rng: np.random.Generator, dpi: int, colour: bool | None) -> bytes:
    date = time.gmtime(EPOCH)
    image = page.image()
    if colour is not None:
        image = image.convert("RGB") if colour else _grey(page)
    buf = io.BytesIO()
    options = {"resolution": float(dpi), "creationDate": date, "modDate": date}
    image.save(buf, "PDF", quality=int(fmt_rng.integers(60, 90)), **options)
    return buf.getvalue()


def _write_pages(path: Path, plan: FilePlan, pages: Iterator[A4Page], opts: A4Options) -> None:
    rng = np.random.default_rng([opts.seed, 45, sum(plan.name.encode())])
    dpi = (opts.dpi, opts.dpi)
    if plan.fmt == "jpg":
        pixels = next(pages).pixels
        rgb = pixels if pixels.ndim == 3 else cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
        Image.fromarray(rgb, "RGB").save(path, "JPEG", quality=int(rng.integers(60, 92)), dpi=dpi)
    elif plan.fmt == "png":
        grey = np.asarray(_grey(next(pages)))
        ok, data = cv2.imencode(".png", grey, [cv2.IMWRITE_PNG_COMPRESSION, 1])  # twice Pillow's speed
        if not ok:
            raise SynthError(f"{path}: PNG encoding failed")
        path.write_bytes(data.tobytes())
    elif plan.fmt == "tif":
        with TiffImagePlugin.AppendingTiffWriter(str(path), new=True) as tiff:
            for each in pages:
                bilevel(each).save(tiff, "TIFF", compression="group4", dpi=dpi)
                tiff.newFrame()
    else:
        parts = [_pdf_page(page, rng, opts.dpi, plan.colour) for page in pages]
        if len(parts) == 1:
            path.write_bytes(parts[0])
            return
        with pikepdf.new() as pdf:
            for part in parts:
                with pikepdf.open(io.BytesIO(part)) as one:
                    pdf.pages.extend(one.pages)
            pdf.save(path, static_id=True)


def write_file(out_dir: Path, plan: FilePlan, opts: A4Options) -> dict[str, Any]:
    """Write one planned file (through a hidden temporary name); its ground-truth entry."""
    path = out_dir / plan.name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    colour = plan.colour if plan.fmt == "pdf" else None
    pages = (render_page(opts, page, colour) for page in plan.pages)
    try:
        _write_pages(tmp, plan, pages, opts)
        os.replace(tmp, path)
    except OSError as exc:
        raise SynthError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    separators = [
        {"page": n, "code": p.code, "symbology": opts.separator}
        for n, p in enumerate(plan.pages, start=1)
        if p.kind == "separator"
    ]
    return {
        "file": plan.name,
        "format": plan.fmt,
        "pages": len(plan.pages),
        "documents": [{"class": kind, "pages": list(numbers)} for kind, numbers in plan.documents],
        "separators": separators,
        "blank_pages": [n for n, p in enumerate(plan.pages, start=1) if p.kind == "blank"],
    }


def _keep_freed_memory() -> None:
    """In a generator process: let glibc keep freed page buffers instead of unmapping them. Each A4 page
    allocates several 26 MB arrays, and mapping them afresh costs a fifth of the time in page faults."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc: only slower
        pass


def _write_one(job: tuple[Path, FilePlan, A4Options]) -> dict[str, Any]:
    cv2.setNumThreads(1)
    return write_file(*job)


def default_truth_path(out_dir: Path, opts: A4Options) -> Path:
    """Beside an unlabelled folder (an inbox must not take it), inside a labelled one."""
    return out_dir.with_name(f"{out_dir.name}-truth.json") if opts.unlabelled else out_dir / "truth.json"


def generate_a4(
    out_dir: Path | str, opts: A4Options, truth_path: Path | None = None, progress: bool = True
) -> A4Summary:
    """Write the files ``opts`` asks for and their ground truth; what was written."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from exc
    started = time.perf_counter()
    plans = plan_files(opts)
    jobs = [(out, plan, opts) for plan in plans]
    workers = min(len(jobs), opts.workers or os.cpu_count() or 1)
    bar = tqdm(total=len(jobs), desc="synth a4", unit="file", disable=not progress)
    if workers <= 1:
        entries = [_step(bar, _write_one(job)) for job in jobs]
    else:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_keep_freed_memory) as pool:
            entries = [_step(bar, entry) for entry in pool.map(_write_one, jobs)]
    bar.close()
    truth = truth_path or default_truth_path(out, opts)
    summary = A4Summary(out, truth, entries, time.perf_counter() - started)
    _write_truth(truth, opts, summary)
    return summary


def _step(bar: tqdm, entry: dict[str, Any]) -> dict[str, Any]:
    bar.update(1)
    return entry


def _write_truth(path: Path, opts: A4Options, summary: A4Summary) -> None:
    document = {
        "seed": opts.seed,
        "dpi": opts.dpi,
        "options": {k: v for k, v in asdict(opts).items() if k != "workers"},
        "files": summary.files,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
