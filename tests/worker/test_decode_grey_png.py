"""A scanner's 8-bit grey PNG is decoded by OpenCV straight into the page's array; the pixels are
Pillow's, and every other PNG (EXIF, fewer bits, transparency, broken) takes Pillow's decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from docsort.synth_a4 import a4_page
from worker.imaging import PageTarget, UnreadableImage, prepare_pages
from worker.limits import DecodeLimits
from worker.rasters import _plain_grey_png, raster_frames, reduced_page


def _grey_a4(tmp_path: Path, name: str = "grey.png", **save: object) -> tuple[Path, np.ndarray]:
    pixels = np.asarray(Image.fromarray(a4_page(3, "text", 1, dpi=300).pixels).convert("L"))
    path = tmp_path / name
    Image.fromarray(pixels).save(path, **save)
    return path, pixels


def _decoded(path: Path) -> np.ndarray:
    limits = DecodeLimits()
    for number, img in raster_frames(path, limits):  # the file is open while the generator runs
        return reduced_page(path, img, number, PageTarget(64, 64).needed, limits).pixels
    raise AssertionError(f"{path} has no page")


def test_a_plain_grey_png_is_decoded_by_opencv_to_pillows_pixels(tmp_path: Path) -> None:
    path, pixels = _grey_a4(tmp_path)
    with Image.open(path) as img:
        fast = _plain_grey_png(path, img)
    assert fast is not None and fast.shape == pixels.shape
    assert np.array_equal(fast, pixels) and np.array_equal(_decoded(path), pixels)


@pytest.mark.parametrize("kind", ["exif", "transparent", "four-bit"])
def test_other_grey_pngs_take_pillows_decode(tmp_path: Path, kind: str) -> None:
    if kind == "four-bit":
        path = tmp_path / "four.png"
        Image.new("L", (64, 48), 255).save(path, bits=4)
    else:
        exif = Image.Exif()
        exif[0x0112] = 1
        save = {"exif": exif.tobytes()} if kind == "exif" else {"transparency": 0}
        path, _ = _grey_a4(tmp_path, f"{kind}.png", **save)
    with Image.open(path) as img:
        assert img.mode == "L" and _plain_grey_png(path, img) is None, kind
    assert _decoded(path).dtype == np.uint8


def test_a_truncated_grey_png_is_still_refused_with_pillows_reason(tmp_path: Path) -> None:
    path, _ = _grey_a4(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UnreadableImage, match=r"grey\.png: .*truncated|grey\.png: .*(broken|corrupt)"):
        list(prepare_pages(path, PageTarget(64, 64)))
