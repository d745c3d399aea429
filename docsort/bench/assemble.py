"""``docsort bench assemble``: writing output documents without loss against today's page-by-page
delivery (each page rendered and saved as PNG), per page, on the same A4 300 dpi batch files.

Two sources are made in the run from synthetic scans (:func:`docsort.synth.make_page`, a few distinct
pages cycled to the length asked for): a PDF of JPEG pages and a G4 TIFF. Each is cut into documents
of 1, 2, 3, 4, 1, 2 ... pages. Per source, three ways run in interleaved rounds:

- **lossless**: :func:`worker.document_file.write_document` for each document (PDF page objects or
  TIFF frames copied);
- **PNG**: :func:`render_pages` for every page of the file, as delivery did before documents
  for a multi-page file (PDF pages rendered at the decoder's 150 dpi, TIFF frames decoded at 300 dpi);
- **whole file**: the file as one document (a byte copy), for scale.

Each call writes into a folder of its own; the folders are removed after the timing.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from docsort.bench.common import ratio
from docsort.bench.docs import Section, num, plain
from docsort.bench.timing import interleaved
from docsort.synth import CLASSES, make_page
from worker.cam import save_image
from worker.document_file import document_suffix, write_document
from worker.imaging import iter_pages

A4_300DPI = (2480, 3508)


def render_pages(source: Path, numbers: set[int], out_dir: Path, sha256: str) -> dict[int, Path]:
    """The delivery of a multi-page file's pages before documents (the baseline measured here): each
    wanted page decoded whole (PDF at 150 dpi) and saved as a PNG."""
    found: dict[int, Path] = {}
    for page in iter_pages(source):
        if page.number in numbers:
            found[page.number] = save_image(page.image, out_dir / f"{sha256[:16]}-p{page.number}.png")
        if len(found) == len(numbers):
            break
    return found


DPI = 300
JPEG_QUALITY = 85
DOCUMENT_SIZES = (1, 2, 3, 4)
KINDS = ("pdf", "tiff")


def _per_page(kind: str, what: str, digits: int = 1) -> Callable[[dict[str, Any]], str]:
    return num(f"{kind}_{what}", digits)


def _bytes(kind: str, what: str) -> Callable[[dict[str, Any]], str]:
    def fmt(result: dict[str, Any]) -> str:
        value = result.get(f"{kind}_{what}_bytes_per_page")
        return "n/a" if value is None else f"{value / 1000:,.0f} kB"

    return fmt


def _sizes(result: dict[str, Any], kind: str) -> str:
    return " / ".join(_bytes(kind, what)(result) for what in ("source", "lossless", "png"))


def _copies(result: dict[str, Any]) -> str:
    return " / ".join(_per_page(kind, "copy_ms_per_page", 2)(result) for kind in KINDS)


SECTION = Section(
    name="assemble",
    title="## Assembling documents: lossless files against page-by-page PNG (`docsort bench assemble`)",
    intro="""
Two A4 300 dpi batch files are made in the run from synthetic scans (a few distinct pages, cycled):
a PDF of JPEG pages (quality 85) and a G4 TIFF. Each is cut into documents of 1, 2, 3, 4, 1, 2 ...
pages, and three ways of delivering it run in interleaved rounds (median of the rounds, after a
warm-up): **lossless**, `worker.document_file.write_document` for each document (the PDF's page
objects copied with pikepdf, the TIFF's G4 frames copied at the tag level); **PNG**, what delivery
did before documents for a multi-page file, each page rendered and saved as a PNG (a PDF page rendered
at the decoder's 150 dpi, a TIFF frame decoded at 300 dpi, each saved as a PNG); and the **whole
file** as one document (a byte copy). *PNG ÷ lossless* is the time ratio. Bytes are those written
per page; a PNG of a PDF page also holds a quarter of the source's pixels (150 against 300 dpi).
""",
    columns=[
        ("pages per file", plain("pages")),
        ("PDF lossless ms/page", _per_page("pdf", "lossless_ms_per_page")),
        ("PDF PNG ms/page", _per_page("pdf", "png_ms_per_page")),
        ("PDF PNG ÷ lossless", num("pdf_png_vs_lossless", 1, "×")),
        ("PDF bytes/page: source / lossless / PNG", lambda r: _sizes(r, "pdf")),
        ("G4 TIFF lossless ms/page", _per_page("tiff", "lossless_ms_per_page")),
        ("G4 TIFF PNG ms/page", _per_page("tiff", "png_ms_per_page")),
        ("G4 TIFF PNG ÷ lossless", num("tiff_png_vs_lossless", 1, "×")),
        ("G4 TIFF bytes/page: source / lossless / PNG", lambda r: _sizes(r, "tiff")),
        ("whole-file copy ms/page, PDF / TIFF", _copies),
    ],
    key=("pages",),
    footer="""
Drawing the synthetic scans takes most of a run (each is drawn at twice A4 300 dpi and scanned down,
15 to 40 s a page on a busy 2-core machine); the timed rounds take under two minutes. A lossless
document costs opening the source (pikepdf reads the PDF's cross-reference table, tifffile the TIFF's
directories) and writing the pages it holds; its bytes are the source's encoded pages plus a few
hundred bytes of structure per file. The ratio grows with the page: rendering and PNG encoding work on
every pixel, copying does not look at them.
""",
)


def documents(pages: int) -> list[list[int]]:
    """The file's pages cut into documents of 1, 2, 3, 4, 1, 2 ... pages (the last one shorter)."""
    cut: list[list[int]] = []
    first = 1
    for size in itertools.cycle(DOCUMENT_SIZES):
        if first > pages:
            return cut
        cut.append(list(range(first, min(first + size, pages + 1))))
        first += size
    return cut


def scans(distinct: int, seed: int = 0) -> list[Image.Image]:
    """``distinct`` synthetic A4 300 dpi scans, one class after another (RGB, grey or bilevel)."""
    return [make_page(seed, CLASSES[i % len(CLASSES)], i, A4_300DPI).image for i in range(distinct)]


def make_sources(folder: Path, pages: int, distinct: int) -> dict[str, Path]:
    """A PDF of JPEG pages and a G4 TIFF of ``pages`` pages each, in ``folder``."""
    images = scans(distinct)
    cycled = [images[i % len(images)] for i in range(pages)]
    jpeg_pages = [img.convert("L") if img.mode == "1" else img for img in cycled]
    bilevel = [img if img.mode == "1" else img.convert("L").point(lambda v: 255 if v > 160 else 0, "1")
               for img in cycled]  # fmt: skip
    pdf, tiff = folder / "batch.pdf", folder / "batch.tif"
    jpeg_pages[0].save(
        pdf, "PDF", save_all=True, append_images=jpeg_pages[1:], resolution=float(DPI), quality=JPEG_QUALITY
    )
    bilevel[0].save(tiff, save_all=True, append_images=bilevel[1:], compression="group4", dpi=(DPI, DPI))
    return {"pdf": pdf, "tiff": tiff}


class _Outputs:
    """A fresh folder for each call of a way of delivering; the sizes of what the last call wrote."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls = itertools.count()
        self.last: dict[str, Path] = {}

    def folder(self, name: str) -> Path:
        folder = self.root / f"{name}-{next(self.calls)}"
        folder.mkdir(parents=True)
        self.last[name] = folder
        return folder

    def bytes_written(self, name: str) -> int:
        return sum(p.stat().st_size for p in self.last[name].iterdir())


def _contenders(source: Path, pages: int, kind: str, outputs: _Outputs) -> dict[str, Callable[[], object]]:
    cut = documents(pages)
    everything = set(range(1, pages + 1))

    def lossless() -> None:
        folder = outputs.folder(f"{kind}-lossless")
        for index, numbers in enumerate(cut, start=1):
            suffix = document_suffix(source, numbers, pages)
            write_document(source, numbers, folder / f"doc-{index}{suffix}", page_count=pages)

    def png() -> None:
        render_pages(source, everything, outputs.folder(f"{kind}-png"), "0" * 64)

    def copy() -> None:
        folder = outputs.folder(f"{kind}-copy")
        write_document(source, sorted(everything), folder / f"doc{source.suffix}", page_count=pages)

    return {f"{kind}-lossless": lossless, f"{kind}-png": png, f"{kind}-copy": copy}


def run(*, pages: int = 30, distinct: int = 4, rounds: int = 3) -> dict[str, Any]:
    """Time the three ways on both sources; ms and bytes per page, and the ratios."""
    result: dict[str, Any] = {"pages": pages, "distinct_pages": distinct, "rounds": rounds, "dpi": DPI}
    result["documents"] = len(documents(pages))
    with tempfile.TemporaryDirectory(prefix="docsort-bench-assemble-") as tmp:
        sources = make_sources(Path(tmp), pages, distinct)
        outputs = _Outputs(Path(tmp) / "out")
        contenders: dict[str, Callable[[], object]] = {}
        for kind, source in sources.items():
            contenders |= _contenders(source, pages, kind, outputs)
        timed = interleaved(contenders, rounds, warmup=1, desc="assemble")
        for kind, source in sources.items():
            for way in ("lossless", "png", "copy"):
                name = f"{kind}-{way}"
                result[f"{kind}_{way}_ms_per_page"] = 1000 * timed[name].median / pages
                result[f"{kind}_{way}_bytes_per_page"] = outputs.bytes_written(name) / pages
            result[f"{kind}_source_bytes_per_page"] = source.stat().st_size / pages
            result[f"{kind}_png_vs_lossless"] = ratio(
                result[f"{kind}_png_ms_per_page"], result[f"{kind}_lossless_ms_per_page"]
            )
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['pages']} A4 {result['dpi']} dpi pages per file ({result['distinct_pages']} distinct), "
        f"{result['documents']} documents of 1-4 pages, median of {result['rounds']} rounds:"
    ]
    for kind, label in (("pdf", "PDF of JPEG pages"), ("tiff", "G4 TIFF")):
        r = {k.removeprefix(f"{kind}_"): v for k, v in result.items() if k.startswith(f"{kind}_")}
        lines.append(
            f"  {label}: lossless {r['lossless_ms_per_page']:.1f} ms/page, "
            f"PNG {r['png_ms_per_page']:.1f} ms/page ({r['png_vs_lossless']:.1f}x), "
            f"whole-file copy {r['copy_ms_per_page']:.2f} ms/page; "
            f"bytes/page (source / lossless / PNG): {_sizes(result, kind)}"
        )
    return lines
