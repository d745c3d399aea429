"""Decoding: every supported format, and every kind of bad file, with the outcome each must give."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.corpus import Case, bad_files, good_files
from worker.imaging import PDF_MAX_SIDE, UnreadableImage, decode_pages, iter_pages, to_rgb

GOOD = good_files()
BAD = bad_files(GOOD)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _mean(img: Image.Image) -> float:
    return float(np.asarray(img, dtype=np.float64).mean())


@pytest.mark.parametrize("name", sorted(GOOD))
def test_supported_format_decodes_to_expected_pages(tmp_path: Path, name: str) -> None:
    data, case = GOOD[name]
    pages = decode_pages(_write(tmp_path, name, data))
    assert [p.number for p in pages] == list(range(1, case.pages + 1))
    for page, label in zip(pages, case.labels, strict=True):
        assert page.image.mode == "RGB"
        level = _mean(page.image)
        assert (level < 60) if label == "dark" else (level > 195), f"{name} page {page.number}: mean {level}"


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_is_unreadable_naming_file_and_reason(tmp_path: Path, name: str) -> None:
    data, case = BAD[name]
    path = _write(tmp_path, name, data)
    with pytest.raises(UnreadableImage) as info:
        decode_pages(path)
    assert isinstance(case, Case) and case.error
    assert case.error.lower() in info.value.reason.lower()
    assert str(path) in str(info.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImage, match=r"nothere\.png: file not found"):
        decode_pages(tmp_path / "nothere.png")


@pytest.mark.parametrize("level16", [1500, 32768, 64000])
def test_sixteen_bit_scan_keeps_its_grey_level(level16: int) -> None:
    img = Image.fromarray(np.full((20, 30), level16, dtype=np.uint16))
    assert img.mode.startswith("I;16")
    assert _mean(to_rgb(img)) == pytest.approx(level16 / 65535 * 255, abs=1.0)


def test_sixteen_bit_png_stored_as_mode_i_is_not_stretched_to_white() -> None:
    img = Image.fromarray(np.full((20, 30), 3000, dtype=np.int32), "I")
    assert _mean(to_rgb(img)) == pytest.approx(3000 / 65535 * 255, abs=1.0)


def test_float_image_in_unit_range_is_scaled() -> None:
    img = Image.fromarray(np.full((10, 10), 0.5, dtype=np.float32), "F")
    assert _mean(to_rgb(img)) == pytest.approx(127.5, abs=1.0)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    (page,) = decode_pages(_write(tmp_path, "r.jpg", GOOD["rotated.jpg"][0]))
    assert page.image.size == (80, 160)  # stored 160x80, shown rotated


def test_cmyk_and_alpha_come_out_as_white_paper(tmp_path: Path) -> None:
    for name in ("white-cmyk.jpg", "transparent.png", "white-palette.png"):
        (page,) = decode_pages(_write(tmp_path, name, GOOD[name][0]))
        assert _mean(page.image) > 240, name


def test_pixel_limit_refuses_large_page_before_decoding(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.png", GOOD["black.png"][0])
    with pytest.raises(UnreadableImage, match="decompression bomb refused: 90x120"):
        decode_pages(path, max_pixels=1000)


def test_page_count_limit_refuses_long_tiff(tmp_path: Path) -> None:
    path = _write(tmp_path, "three.tif", GOOD["three.tif"][0])
    with pytest.raises(UnreadableImage, match="3 pages exceeds the limit of 2"):
        decode_pages(path, max_pages=2)


def test_corrupt_body_after_valid_header_is_reported(tmp_path: Path) -> None:
    png = GOOD["black.png"][0]
    path = _write(tmp_path, "corrupt.png", png[:40] + bytes(range(256)) * 4)
    with pytest.raises(UnreadableImage, match=r"corrupt\.png: .*(corrupt|truncated)"):
        decode_pages(path)


def test_pdf_pages_render_at_bounded_size(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (2000, 3000), "white").save(buf, "PDF", resolution=10.0)  # a 200 x 300 inch page
    (page,) = decode_pages(_write(tmp_path, "huge.pdf", buf.getvalue()))
    assert max(page.image.size) <= PDF_MAX_SIDE


def test_tiff_pages_are_yielded_one_at_a_time(tmp_path: Path) -> None:
    pages = iter_pages(_write(tmp_path, "three.tif", GOOD["three.tif"][0]))
    first = next(pages)
    assert first.number == 1 and _mean(first.image) < 60
    assert [p.number for p in pages] == [2, 3]
