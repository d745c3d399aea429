"""The worst inputs decode within a memory bound: the peak resident set of a process running the worker's
decode step, measured by the kernel.

The bound for a legal page is 14 bytes per pixel over the process's baseline: Pillow holds the page in
its own mode (1 to 2 bytes a pixel, plus the copy orientation handling makes), then as RGB (4 bytes a
pixel), and the model input is cut from a 3-byte array of it. At the decoder's limit of 120 Mpx that
is about 1.7 GB: a worker host needs that much per process for the largest page it accepts. A
decompression bomb (a small file whose header claims billions of pixels) is refused from its header,
before any pixel is decoded. Until its batch is classified, a document holds per page at most the model
input and a review-size preview (longest side 1600 px, RGB): 7.4 MB, never the full page.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
BYTES_PER_PIXEL = 14
PER_PAGE_KEPT = 8 * MB
A3_600DPI = (7016, 9921)  # 69.6 Mpx: the largest scan a copier makes
A4_300DPI = (2480, 3508)


@dataclass
class Probe:
    growth_bytes: int
    pages: int
    refused: str | None


def probe(path: Path) -> Probe:
    """Decode ``path`` in a fresh process; its peak RSS growth over the baseline after imports."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.decode_probe", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"decoding {path.name} ended with {proc.returncode}:\n{err[-3000:]}"
    report = json.loads(out.strip().splitlines()[-1])
    growth = (usage.ru_maxrss - report["baseline_kb"]) * 1024
    return Probe(growth, report["pages"], report["refused"])


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bomb(path: Path, side: int = 50_000) -> Path:
    """A 100-byte PNG whose header claims side x side 8-bit RGB pixels (7.5 GB decoded)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024, 9)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )
    return path


def jpeg_bomb(path: Path, side: int = 65_000) -> Path:
    """A small JPEG whose frame header is rewritten to claim side x side pixels."""
    Image.new("RGB", (64, 64), "white").save(path, quality=90)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    path.write_bytes(bytes(data))
    return path


def _text_lines(shape: tuple[int, int], ink: object, ground: object, dtype: type) -> np.ndarray:
    arr = np.full(shape, ground, dtype=dtype)
    for top in range(300, shape[0] - 300, 120):
        arr[top : top + 40, 200 : shape[1] - 200 - (top % 1000)] = ink
    return arr


def bilevel_scan(path: Path, size: tuple[int, int] = A3_600DPI, pages: int = 1) -> Path:
    """Bilevel CCITT G4 TIFF pages: a few hundred kilobytes of file for tens of megapixels."""
    frames = [Image.fromarray(_text_lines((size[1], size[0]), False, True, bool)) for _ in range(pages)]
    frames[0].save(path, compression="group4", save_all=True, append_images=frames[1:], dpi=(600, 600))
    return path


def sixteen_bit_scan(path: Path, size: tuple[int, int] = A3_600DPI) -> Path:
    Image.fromarray(_text_lines((size[1], size[0]), 3000, 60000, np.uint16)).save(
        path, compression="tiff_adobe_deflate"
    )
    return path


@pytest.mark.parametrize(
    ("make", "name"), [(png_bomb, "bomb.png"), (jpeg_bomb, "bomb.jpg")], ids=["png", "jpeg"]
)
def test_decompression_bomb_is_refused_from_its_header_without_decoding(
    make: object, name: str, tmp_path: Path
) -> None:
    path = make(tmp_path / name)  # type: ignore[operator]
    assert path.stat().st_size < 4096
    result = probe(path)
    assert result.refused and "decompression bomb" in result.refused, result
    assert result.growth_bytes < 32 * MB, f"{result.growth_bytes / MB:.0f} MB to refuse a bomb"


@pytest.mark.parametrize("make", [bilevel_scan, sixteen_bit_scan], ids=["bilevel-g4", "16-bit"])
def test_largest_legal_scan_decodes_within_bytes_per_pixel_bound(make: object, tmp_path: Path) -> None:
    path = make(tmp_path / "scan.tif")  # type: ignore[operator]
    result = probe(path)
    pixels = A3_600DPI[0] * A3_600DPI[1]
    assert result.refused is None and result.pages == 1, result
    print(f"{path.name}: {path.stat().st_size} bytes, peak +{result.growth_bytes / MB:.0f} MB")
    assert result.growth_bytes <= BYTES_PER_PIXEL * pixels, (
        f"{result.growth_bytes / pixels:.1f} bytes per pixel (bound {BYTES_PER_PIXEL})"
    )


def test_many_page_fax_holds_only_a_preview_and_model_input_per_page(tmp_path: Path) -> None:
    n = 24
    path = bilevel_scan(tmp_path / "fax.tif", A4_300DPI, pages=n)
    result = probe(path)
    assert result.pages == n, result
    transient = BYTES_PER_PIXEL * A4_300DPI[0] * A4_300DPI[1]
    print(f"{n} pages: peak +{result.growth_bytes / MB:.0f} MB")
    assert result.growth_bytes <= transient + n * PER_PAGE_KEPT, f"{result.growth_bytes / MB:.0f} MB"
