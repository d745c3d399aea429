"""A PDF page that is one scanned JPEG is decoded from its JPEG stream (DCT scaling) instead of rendered:
the stream handed out is the page's own, the model input stays within the tolerance of rendering the page,
and every other page (turned, drawn over, not filling the page, a broken stream) is still rendered."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image

from docsort.synth_a4_files import A4Options, generate_a4
from worker.imaging import TOLERANCE, PageTarget, prepare_pages, preview_pages, to_model_input
from worker.limits import DecodeLimits
from worker.pdfchild import PdfPages
from worker.pdfrender import pdf_pages
from worker.pixels import model_input
from worker.rasters import jpeg_stream

TARGETS = [PageTarget(64, 64), PageTarget(224, 224, "stretch")]


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A4 image PDFs as a scanner writes them: one JPEG (grey or colour) filling each page."""
    root = tmp_path_factory.mktemp("pdf")
    opts = A4Options(
        pages=3, formats=("pdf",), classes=("text", "photo"), seed=11, workers=1, unlabelled=True
    )
    summary = generate_a4(root, opts, progress=False)
    return [root / f["file"] for f in summary.files]


def _stream(path: Path) -> bytes:
    with pikepdf.open(path) as pdf:
        (image,) = pdf.pages[0].Resources.XObject.values()
        return bytes(image.read_raw_bytes())


def _rendered_input(path: Path, target: PageTarget) -> np.ndarray:
    """The model input the way every PDF page was decoded before: PDFium renders it at the scale needed."""

    def scale(geometry):  # type: ignore[no-untyped-def]
        w, h = target.needed(*geometry.pixels)
        return max(w / geometry.points[0], h / geometry.points[1])

    (page,) = pdf_pages(path, DecodeLimits(), scale)
    return model_input(page.rgb, target, page.geometry.pixels)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_the_render_process_hands_out_the_pages_own_jpeg_stream(scans: list[Path]) -> None:
    for path in scans:
        pages = PdfPages(str(path))
        try:
            got = pages.embedded_jpeg(0)
        finally:
            pages.close()
        assert got[:3] == b"\xff\xd8\xff" and got == _stream(path), path.name


def test_a_scanned_page_from_its_jpeg_is_within_tolerance_of_its_whole_scan(scans: list[Path]) -> None:
    for path in scans:
        whole = Image.open(io.BytesIO(_stream(path)))  # what PDFium draws: the scan, filling the page
        for target in TARGETS:
            (page,) = prepare_pages(path, target)
            expected = to_model_input(whole, target.size, target.resize, target.pad_value)
            mad = _mad(page.model_input, expected)
            rendered = _mad(page.model_input, _rendered_input(path, target))
            print(f"{path.name} {target.size}: {mad:.2f} from the whole scan, {rendered:.2f} from rendering")
            assert mad <= TOLERANCE, f"{path.name} {target.size}: {mad:.2f} grey levels"
        (previewed,) = prepare_pages(path, PageTarget(64, 64, preview_side=1600))
        assert previewed.preview is not None and max(previewed.preview.size) == 1600
        ((number, preview),) = preview_pages(path, {1}, 800)
        assert number == 1 and max(preview.size) == 800


def _variant(source: Path, out: Path, change: str) -> Path:
    with pikepdf.open(source) as pdf:
        page = pdf.pages[0]
        if change == "turned":
            page.Rotate = 90
        elif change == "drawn over":
            page.contents_add(pikepdf.Stream(pdf, b"q 0 0 0 rg 50 50 200 40 re f Q\n"))
        elif change == "half page":
            page.Contents = pikepdf.Stream(pdf, b"q 297.6 0 0 420.96 0 0 cm /image Do Q\n")
        elif change == "mirrored":
            page.Contents = pikepdf.Stream(pdf, b"q -595.2 0 0 841.92 595.2 0 cm /image Do Q\n")
        pdf.save(out)
    return out


@pytest.mark.parametrize("change", ["turned", "drawn over", "half page", "mirrored"])
def test_a_page_that_is_more_than_one_upright_jpeg_is_rendered(
    scans: list[Path], tmp_path: Path, change: str
) -> None:
    path = _variant(scans[0], tmp_path / "variant.pdf", change)
    pages = PdfPages(str(path))
    try:
        assert pages.embedded_jpeg(0) == b""
    finally:
        pages.close()
    target = PageTarget(64, 64)
    (page,) = prepare_pages(path, target)
    assert np.array_equal(page.model_input, _rendered_input(path, target))  # rendered: the same pixels


def test_a_broken_jpeg_stream_is_left_to_the_renderer(scans: list[Path], tmp_path: Path) -> None:
    stream = _stream(scans[0])
    target = PageTarget(64, 64)
    limits = DecodeLimits()
    assert jpeg_stream(scans[0], stream, 1, target.needed, target.preview_size, limits) is not None
    for broken in (stream[: len(stream) // 3], b"\xff\xd8\xff" + b"\x00" * 64):
        assert jpeg_stream(scans[0], broken, 1, target.needed, target.preview_size, limits) is None
    small = DecodeLimits(max_page_pixels=1_000_000)  # over the pixel limit: PDFium renders it small
    assert jpeg_stream(scans[0], stream, 1, target.needed, target.preview_size, small) is None
