"""Decode once at the size needed: on A4 scans at 300 dpi the model input stays within the stated
tolerance of decoding the page whole and resizing it (exactly equal for a colour PNG), JPEGs decode at
1/8 to 1/2 scale, PDF pages render at the scale needed, and the trainer gets the worker's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from docsort.synth_a4 import a4_page
from docsort.synth_a4_files import A4Options, generate_a4
from trainer.data import LabelledFile, decode_examples
from worker.imaging import (
    TOLERANCE,
    PageTarget,
    UnreadableImage,
    iter_pages,
    load_model_inputs,
    prepare_pages,
    to_model_input,
)
from worker.limits import DecodeLimits
from worker.pdfrender import pdf_pages
from worker.rasters import raster_frames, reduced_page

A4 = (2480, 3508)
TARGETS = [PageTarget(64, 64), PageTarget(224, 224, "stretch"), PageTarget(224, 224, preview_side=1600)]


@pytest.fixture(scope="module")
def a4_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Two A4 scans in each format the scanners write (text and photo pages drawn by seed)."""
    root = tmp_path_factory.mktemp("a4")
    found: dict[str, list[Path]] = {}
    for fmt in ("jpg", "png", "tif", "pdf"):
        opts = A4Options(
            pages=2, formats=(fmt,), classes=("text", "photo"), seed=5, workers=1, unlabelled=True
        )
        summary = generate_a4(root / fmt, opts, progress=False)
        found[fmt] = [root / fmt / f["file"] for f in summary.files]
    return found


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("fmt", ["jpg", "png", "tif", "pdf"])
def test_model_input_is_within_tolerance_of_a_whole_decode_and_resize(
    a4_files: dict[str, list[Path]], fmt: str
) -> None:
    for path in a4_files[fmt]:
        whole = [p.image for p in iter_pages(path)]
        for target in TARGETS:
            reduced = list(prepare_pages(path, target))
            assert len(reduced) == len(whole) == 1
            expected = to_model_input(whole[0], target.size, target.resize, target.pad_value)
            got = reduced[0].model_input
            assert got.shape == (*target.size, 3) and got.dtype == np.uint8
            mad = _mad(got, expected)
            print(f"{path.name} {target.size} {target.resize}: mean |difference| {mad:.2f}")
            # grey and bilevel pages (png, tif) are decoded whole and kept grey: the box filter's
            # sampling, against the RGB page's area resize, is all that differs
            assert mad <= TOLERANCE, f"{path.name}: {mad:.2f} grey levels"


def test_pages_report_their_size_at_scan_resolution_and_a_preview_of_the_side_asked(
    a4_files: dict[str, list[Path]],
) -> None:
    for fmt, paths in a4_files.items():
        for path in paths:
            (page,) = prepare_pages(path, PageTarget(64, 64, preview_side=1600))
            assert (page.width, page.height) in {A4, A4[::-1]}, (fmt, path.name)
            grey = fmt in ("png", "tif")  # the generator writes grey PNGs and bilevel TIFFs
            assert page.preview is not None and page.preview.mode == ("L" if grey else "RGB"), path.name
            assert max(page.preview.size) == 1600
            assert abs(page.preview.width / page.preview.height - page.width / page.height) < 0.01
            (bare,) = prepare_pages(path, PageTarget(64, 64))
            assert bare.preview is None
            assert np.array_equal(bare.model_input, page.model_input), "a preview changed the model input"


def test_jpeg_is_decoded_at_the_smallest_dct_scale_that_serves(a4_files: dict[str, list[Path]]) -> None:
    path = a4_files["jpg"][0]
    limits = DecodeLimits()
    preview = PageTarget(64, 64, preview_side=1600)
    for need, scale in ((preview.needed, 8), (lambda w, h: preview.preview_size(w, h) or (w, h), 2)):
        for number, img in raster_frames(path, limits):
            w, h = img.size
            raster = reduced_page(path, img, number, need, limits)
            assert raster.size == (w, h)
            assert raster.pixels.shape[:2] == (-(-h // scale), -(-w // scale))


def test_bilevel_and_grey_pages_stay_grey_at_full_size(a4_files: dict[str, list[Path]]) -> None:
    limits = DecodeLimits()
    for fmt in ("tif", "png"):
        path = a4_files[fmt][0]
        for number, img in raster_frames(path, limits):
            raster = reduced_page(path, img, number, PageTarget(64, 64).needed, limits)
            assert raster.pixels.ndim == 2 and raster.pixels.dtype == np.uint8  # 1 byte a pixel, not RGB


def test_pdf_pages_render_at_the_scale_needed_not_150_dpi(a4_files: dict[str, list[Path]]) -> None:
    path = a4_files["pdf"][0]
    (page,) = pdf_pages(path, DecodeLimits(), lambda g: 200 / max(g.points))
    assert max(page.rgb.shape[:2]) in (200, 201)
    assert page.geometry.pixels in {A4, A4[::-1]}  # the embedded scan's resolution, 300 dpi
    (whole,) = iter_pages(path)
    assert max(whole.image.size) in (1754, 1755)  # iter_pages still renders the whole page at 150 dpi


@pytest.mark.parametrize("orientation", [3, 5, 6, 8])
def test_exif_orientation_is_applied_to_the_reduced_decode(tmp_path: Path, orientation: int) -> None:
    pixels = a4_page(2, "form", 1, dpi=300).pixels
    exif = Image.Exif()
    exif[0x0112] = orientation
    for fmt in ("JPEG", "PNG"):
        path = tmp_path / f"o{orientation}.{fmt.lower()}"
        Image.fromarray(pixels).save(path, fmt, exif=exif.tobytes())
        (whole,) = iter_pages(path)
        target = PageTarget(96, 64, preview_side=400)
        (page,) = prepare_pages(path, target)
        assert (page.width, page.height) == whole.image.size
        assert page.preview is not None and page.preview.size == (
            round(whole.image.width * 400 / max(whole.image.size)),
            round(whole.image.height * 400 / max(whole.image.size)),
        )
        expected = to_model_input(whole.image, target.size)
        if fmt == "PNG":
            assert np.array_equal(page.model_input, expected)
        else:
            assert _mad(page.model_input, expected) <= TOLERANCE


def test_trainer_decodes_the_same_pixels_as_the_worker_at_a4(a4_files: dict[str, list[Path]]) -> None:
    files = [LabelledFile(p, 0) for paths in a4_files.values() for p in paths]
    examples = decode_examples(files, (64, 64), "letterbox", 255, threads=2, progress=False)
    served = [page.model_input for f in files for page in prepare_pages(f.path, PageTarget(64, 64))]
    assert len(examples) == len(served) == len(files)
    for got, want in zip(examples.images, served, strict=True):
        assert np.array_equal(got, want)
    (first,) = load_model_inputs(files[0].path, (64, 64))
    assert np.array_equal(first, served[0])


def test_byte_limit_counts_a_jpeg_after_its_dct_scaling(tmp_path: Path) -> None:
    path = tmp_path / "a4.jpg"
    Image.fromarray(a4_page(1, "photo", 1).pixels).convert("RGB").save(path, quality=80)
    limits = DecodeLimits(max_page_mb=4)  # the whole page needs 33 MB; at 1/8 scale, 0.5 MB
    assert len(list(prepare_pages(path, PageTarget(64, 64), limits=limits))) == 1
    with pytest.raises(
        UnreadableImage, match=r"page 1 needs 33 MB to decode .* limit of 4 MB \(DOCSORT_MAX_PAGE_MB\)"
    ):
        list(iter_pages(path, limits=limits))


def test_a_png_over_the_byte_limit_is_refused_before_any_pixel_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((2000, 1500), 40000, np.uint16)).save(path)  # 16-bit grey: 6 MB to decode
    limits = DecodeLimits(max_page_mb=4)
    with Image.open(path) as img:
        with pytest.raises(UnreadableImage, match=r"page 1 needs 6 MB to decode .* limit of 4 MB"):
            reduced_page(path, img, 1, lambda w, h: (64, 64), limits)
        assert img._im is None  # Pillow has not decoded it (reading EXIF would have)
    with pytest.raises(UnreadableImage, match="DOCSORT_MAX_PAGE_MB"):
        list(prepare_pages(path, PageTarget(64, 64), limits=limits))
