"""A grey or RGB JPEG (a file, or a PDF page's JPEG) is decoded by OpenCV at the DCT scale Pillow's draft
chose, straight into the page's array: the pixels are Pillow's at every scale and orientation; any other
JPEG (CMYK, truncated) takes Pillow's decode and its reasons."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from docsort.synth_a4 import a4_page
from worker.imaging import PageTarget, UnreadableImage, prepare_pages
from worker.limits import DecodeLimits
from worker.rasters import _plain_jpeg, jpeg_stream, raster_frames, reduced_page


def _page(mode: str, size: tuple[int, int] = (1241, 1753)) -> Image.Image:
    """A scan-like page of odd size (its DCT-scaled sizes round up), grey or colour."""
    return Image.fromarray(a4_page(5, "photo", 1, dpi=150).pixels).convert(mode).resize(size)


def _pillow(source: Path | bytes, scale: int) -> np.ndarray:
    """Pillow's own decode of a JPEG at 1/``scale``, as stored."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        w, h = img.size
        img.draft(None, (w // scale, h // scale))
        img.load()
        return np.asarray(img)


def _half(w: int, h: int) -> tuple[int, int]:
    return w // 2, h // 2


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_a_jpeg_is_decoded_by_opencv_to_pillows_pixels_at_each_dct_scale(
    tmp_path: Path, mode: str, scale: int
) -> None:
    path = tmp_path / f"page-{mode}.jpg"
    _page(mode).save(path, quality=85, progressive=scale == 4)
    with Image.open(path) as img:
        w, h = img.size
        img.draft(None, (w // scale, h // scale))
        fast = _plain_jpeg(path, img, (w, h))
    assert fast is not None and fast.shape[:2] == (-(-h // scale), -(-w // scale))
    assert np.array_equal(fast, _pillow(path, scale)), (mode, scale)


def test_a_turned_jpeg_and_a_pdf_pages_jpeg_keep_pillows_pixels(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown turned a quarter clockwise
    turned = tmp_path / "turned.jpg"
    _page("RGB").save(turned, quality=85, exif=exif)
    limits = DecodeLimits()
    for number, img in raster_frames(turned, limits):
        raster = reduced_page(turned, img, number, _half, limits)
        assert (raster.orientation, raster.size) == (6, (1753, 1241))  # turned later, as Pillow's pixels
        assert np.array_equal(raster.pixels, _pillow(turned, 2))
    out = io.BytesIO()
    _page("L").save(out, format="JPEG", quality=85)
    stream = out.getvalue()  # a scanned PDF page's JPEG, handed out by the render process
    found = jpeg_stream(tmp_path / "scan.pdf", stream, 1, _half, lambda w, h: None, limits)
    assert found is not None and np.array_equal(found[0].pixels, _pillow(stream, 2))


@pytest.mark.parametrize("kind", ["cmyk", "truncated"])
def test_other_jpegs_take_pillows_decode(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.jpg"
    _page("CMYK" if kind == "cmyk" else "RGB").save(path, quality=85)
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with Image.open(path) as img:
        assert _plain_jpeg(path, img, img.size) is None, kind
    if kind == "cmyk":
        limits = DecodeLimits()
        for number, img in raster_frames(path, limits):
            assert reduced_page(path, img, number, PageTarget(64, 64).needed, limits).pixels.shape[2] == 3
    else:
        with pytest.raises(UnreadableImage, match=r"truncated\.jpg: .*truncated"):
            list(prepare_pages(path, PageTarget(64, 64)))
