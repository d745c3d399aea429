"""The worst inputs are refused or decoded within a stated bound, measured by the kernel in a fresh process.

The bound for a raster page is its decoded bytes (pixels x the bytes a pixel of its mode: 1 bilevel or
grey, 2 for 16-bit grey, 4 for RGB, RGBA and float) plus its 8-bit copy (1 byte a pixel grey, 3 colour),
with 15% and 48 MB for strips and buffers: at most about twice the decoded bytes, which
``DOCSORT_MAX_PAGE_MB`` (320) bounds, so one page never takes more than about 700 MB. Pages whose header
claims more pixels or bytes than the limits are refused before a pixel is decoded. PDF pages render in a
separate process limited to ``DOCSORT_PDF_RENDER_MEMORY_MB`` of address space and
``DOCSORT_PDF_PAGE_TIMEOUT_S`` a page; the worker holds only what each page yields. Until its batch is
classified, a document holds per page its model input (224 x 224 x 3 here), previews are streamed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.faults.hostile_files import (
    A3_600DPI,
    A4_300DPI,
    JUST_UNDER_120_MPX,
    bilevel_scan,
    deep_scan,
    huge_page_pdf,
    jpeg_bomb,
    many_page_tiff,
    nested_xobject_pdf,
    png_bomb,
    png_header_only,
    tiff_header_claiming,
)
from worker.limits import PDF_RENDER_MEMORY_MB, bytes_per_pixel

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
MODEL_INPUT = 224 * 224 * 3
PREVIEW_FRAME = 1600 * 1600 * 3  # a page rendered for a 1600 px preview, as it crosses the pipe
SLACK = 48 * MB
REFUSAL_GROWTH = 32 * MB


@dataclass
class Probe:
    growth_bytes: int  # peak resident set over the baseline after imports
    pages: int
    refused: str | None
    seconds: float
    renderer_bytes: int  # the largest render process's peak
    renderer_after_bytes: int  # the render process kept for the next file; 0 if none
    kept_bytes: int  # resident set over the baseline once the file is done (its model inputs kept)


def probe(path: Path, limits: dict[str, Any] | None = None, preview_side: int = 1600) -> Probe:
    """Decode ``path`` in a fresh process (tests/faults/decode_probe.py) and read what it took."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    cmd = [sys.executable, "-m", "tests.faults.decode_probe", str(path), json.dumps(limits or {})]
    done = subprocess.run([*cmd, str(preview_side)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, f"decoding {path.name} ended with {done.returncode}:\n{done.stderr[-3000:]}"
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return Probe(
        (r["peak_kb"] - r["baseline_kb"]) * 1024,
        r["pages"],
        r["refused"],
        r["seconds"],
        r["renderer_kb"] * 1024,
        r["renderer_after_kb"] * 1024,
        (r["after_kb"] - r["baseline_kb"]) * 1024,
    )


def page_bound(size: tuple[int, int], mode: str) -> int:
    """Decoded bytes plus the 8-bit copy, with room for strips and buffers."""
    pixels = size[0] * size[1]
    eight_bit = 1 if mode in ("1", "L", "I;16", "F") else 3
    return int(pixels * (bytes_per_pixel(mode) + eight_bit) * 1.15) + SLACK


@pytest.mark.parametrize(
    ("make", "name"), [(png_bomb, "bomb.png"), (jpeg_bomb, "bomb.jpg")], ids=["png", "jpeg"]
)
def test_decompression_bomb_is_refused_from_its_header_without_decoding(
    make: Callable[[Path], Path], name: str, tmp_path: Path
) -> None:
    path = make(tmp_path / name)
    assert path.stat().st_size < 4096
    result = probe(path)
    assert (
        result.refused
        and "decompression bomb" in result.refused
        and "DOCSORT_MAX_PAGE_PIXELS" in result.refused
    )
    assert result.growth_bytes < REFUSAL_GROWTH, f"{result.growth_bytes / MB:.0f} MB to refuse a bomb"


@pytest.mark.parametrize(
    ("make", "mode"),
    [
        (lambda p: png_header_only(p, JUST_UNDER_120_MPX, "RGBA"), "RGBA"),
        (lambda p: png_header_only(p, JUST_UNDER_120_MPX, "RGBA", depth=16), "RGBA"),
        (lambda p: tiff_header_claiming(p, "F", JUST_UNDER_120_MPX), "F"),
    ],
    ids=["rgba-png", "rgba16-png", "float-tiff"],
)
def test_page_just_under_the_pixel_limit_but_over_the_byte_limit_is_refused_before_decoding(
    make: Callable[[Path], Path], mode: str, tmp_path: Path
) -> None:
    path = make(tmp_path / "deep.img")
    result = probe(path)
    assert result.refused is not None, result
    assert str(path) in result.refused
    assert (
        f"mode {mode}" in result.refused
        and "over the limit of 320 MB (DOCSORT_MAX_PAGE_MB)" in result.refused
    )
    assert result.growth_bytes < REFUSAL_GROWTH


@pytest.mark.parametrize(
    ("mode", "size", "name"),
    [
        ("1", A3_600DPI, "g4.tif"),
        ("I;16", A3_600DPI, "16.tif"),
        ("I;16", JUST_UNDER_120_MPX, "16-max.tif"),
        ("F", (6400, 6250), "float.tif"),
        ("RGBA", (6400, 6250), "rgba.png"),
    ],
    ids=["bilevel-g4-a3-600dpi", "16-bit-a3-600dpi", "16-bit-120mpx", "float-40mpx", "rgba-40mpx"],
)
def test_largest_legal_page_of_each_mode_decodes_within_its_bound(
    mode: str, size: tuple[int, int], name: str, tmp_path: Path
) -> None:
    path = bilevel_scan(tmp_path / name, size) if mode == "1" else deep_scan(tmp_path / name, mode, size)
    result = probe(path)
    assert result.refused is None and result.pages == 1, result
    pixels = size[0] * size[1]
    bound = page_bound(size, mode)
    print(
        f"{name}: {pixels / 1e6:.0f} Mpx, peak +{result.growth_bytes / MB:.0f} MB (bound {bound / MB:.0f} MB)"
    )
    assert result.growth_bytes <= bound, f"{result.growth_bytes / pixels:.2f} bytes a pixel"
    assert result.kept_bytes < SLACK, f"{result.kept_bytes / MB:.0f} MB still held after the page"


def test_tiff_of_thousands_of_pages_is_refused_naming_the_page_limit(tmp_path: Path) -> None:
    path = many_page_tiff(tmp_path / "many.tif", 2000)
    result = probe(path)
    assert (
        result.refused is not None
        and "2000 pages exceeds the limit of 500 (DOCSORT_MAX_PAGES)" in result.refused
    )
    assert result.growth_bytes < REFUSAL_GROWTH
    assert probe(path, {"max_pages": 2000}, preview_side=0).pages == 2000


def test_many_page_fax_holds_only_a_model_input_per_page(tmp_path: Path) -> None:
    n = 24
    result = probe(bilevel_scan(tmp_path / "fax.tif", A4_300DPI, pages=n))
    assert result.pages == n, result
    bound = page_bound(A4_300DPI, "1") + n * MODEL_INPUT
    print(f"{n} pages: peak +{result.growth_bytes / MB:.0f} MB (bound {bound / MB:.0f} MB)")
    assert result.growth_bytes <= bound


def test_nested_form_xobjects_fail_the_file_at_the_render_memory_limit(tmp_path: Path) -> None:
    path = nested_xobject_pdf(tmp_path / "nested.pdf")
    assert path.stat().st_size < 4096
    result = probe(path)
    assert result.refused is not None, result
    assert str(path) in result.refused and "PDF page 1" in result.refused
    assert (
        f"render memory limit of {PDF_RENDER_MEMORY_MB} MB (DOCSORT_PDF_RENDER_MEMORY_MB)" in result.refused
    )
    assert result.growth_bytes < REFUSAL_GROWTH, "the worker's own memory did not grow"
    assert result.renderer_bytes <= PDF_RENDER_MEMORY_MB * MB
    print(f"refused in {result.seconds:.1f} s; renderer peak {result.renderer_bytes / MB:.0f} MB")


def test_nested_form_xobjects_fail_the_file_at_the_render_time_limit(tmp_path: Path) -> None:
    path = nested_xobject_pdf(tmp_path / "nested.pdf")
    result = probe(path, {"pdf_render_memory_mb": 4096, "pdf_page_timeout_s": 1.0})
    assert result.refused is not None and "PDF page 1 took longer than 1 s to render" in result.refused
    assert "DOCSORT_PDF_PAGE_TIMEOUT_S" in result.refused
    assert result.seconds < 10


def test_five_hundred_huge_pdf_pages_decode_in_bounded_memory_and_leave_none_behind(tmp_path: Path) -> None:
    path = huge_page_pdf(tmp_path / "huge.pdf", pages=500)
    result = probe(path)
    assert result.refused is None and result.pages == 500, result
    bound = SLACK + 500 * MODEL_INPUT + 4 * PREVIEW_FRAME  # the render, its resize, the preview, spare
    print(
        f"500 pages of 200x200 in: {result.seconds:.0f} s, worker +{result.growth_bytes / MB:.0f} MB "
        f"(bound {bound / MB:.0f} MB), renderer peak {result.renderer_bytes / MB:.0f} MB, "
        f"kept after {result.renderer_after_bytes / MB:.0f} MB"
    )
    assert result.growth_bytes <= bound
    assert result.kept_bytes <= SLACK + 500 * MODEL_INPUT  # no preview kept: only the model inputs
    assert result.renderer_bytes <= 256 * MB
    assert result.renderer_after_bytes <= 256 * MB  # DOCSORT_PDF_RENDERER_KEEP_MB: else it is replaced
