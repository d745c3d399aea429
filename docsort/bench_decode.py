"""Decode benchmark on A4 scans: the previous decode (each page whole, then resized) against the decode at
the size needed, side by side on the same files, each mode in a fresh process for its peak memory.

``python -m docsort.bench_decode [--pages 200] [--folder DIR] [--size 64]`` makes (or reuses) an A4 mix
with :func:`docsort.synth_a4_files.generate_a4` and prints, per mode, pages/s overall and per format and
the peak resident set over the process's baseline (VmHWM - VmRSS after imports). Modes:

- ``whole``: the previous decode: every page decoded whole (EXIF-turned copy, RGB at full size; PDFs
  rendered in-process at 150 dpi), then resized to the model input;
- ``whole+preview``: the same, plus a 1600 px LANCZOS preview from the whole page (a review page);
- ``reduced-before``: ``reduced`` as it was before scanned PDF pages were decoded from their JPEG and
  grey pages reduced with the box filter (every PDF page rendered; OpenCV's area resize throughout);
- ``reduced``: :func:`worker.imaging.prepare_pages`, model input only;
- ``reduced+preview``: the same with ``preview_side=1600``;
- ``reduced+keep``: ``reduced`` keeping review preview pixels (1600 px, :mod:`worker.kept`) where the
  decode holds them, as the worker does for every page of a job within its budget;
- ``reduced-inprocess``: ``reduced`` with PDFs rendered in this process (``pdf_isolated=False``), to
  show what the render process costs a page.

The timing runs every mode on each file in turn, in one process, so that the varying load of a shared
machine falls on every mode alike; each mode's peak memory is then measured in a fresh process of its
own. One OpenCV thread in every mode (a worker process per core).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

MODES = (
    "whole",
    "whole+preview",
    "reduced-before",
    "reduced",
    "reduced+preview",
    "reduced+keep",
    "reduced-inprocess",
)
PREVIEW_SIDE = 1600


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        return int(next(x for x in fh if x.startswith(f"{field}:")).split()[1])


def _whole_pages(path: Path) -> list[Image.Image]:
    """The previous decode, page by page: each page whole, in RGB."""
    from worker.imaging import media_type_of, to_rgb

    if media_type_of(path) == "application/pdf":
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(str(path))
        try:
            out = []
            for index in range(len(pdf)):
                page = pdf[index]
                w_pt, h_pt = page.get_size()
                scale = min(150 / 72.0, 4000 / max(w_pt, h_pt, 1.0))
                out.append(to_rgb(page.render(scale=scale).to_pil()))
            return out
        finally:
            pdf.close()
    pages = []
    with Image.open(path) as img:
        for index in range(getattr(img, "n_frames", 1) if img.format == "TIFF" else 1):
            img.seek(index)
            frame = ImageOps.exif_transpose(img)
            frame.load()
            pages.append(to_rgb(frame))
    return pages


def _decode_whole(path: Path, size: int, preview: bool) -> int:
    from worker.imaging import to_model_input

    pages = _whole_pages(path)
    for page in pages:
        to_model_input(page, (size, size))
        if preview:
            scale = min(1.0, PREVIEW_SIDE / max(page.size))
            page.resize((round(page.width * scale), round(page.height * scale)), Image.Resampling.LANCZOS)
    return len(pages)


def _decode_reduced(path: Path, size: int, preview: bool, isolated: bool = True, keep: bool = False) -> int:
    from worker.imaging import PageTarget, PreviewKeep, prepare_pages
    from worker.limits import DecodeLimits

    target = PageTarget(size, size, preview_side=PREVIEW_SIDE if preview else None)
    kept = PreviewKeep(PREVIEW_SIDE, 1 << 40) if keep else None  # the worker's review keep, no budget
    return sum(1 for _ in prepare_pages(path, target, limits=DecodeLimits(pdf_isolated=isolated), keep=kept))


def _decode_before(path: Path, size: int) -> int:
    """``reduced`` as it was before a scanned PDF page was decoded from its JPEG and a grey page reduced
    with the box filter: every PDF page rendered, every reduction OpenCV's area resize."""
    from worker import imaging, pixels

    direct, ratio = imaging._direct_jpeg, pixels.BOX_RATIO
    imaging._direct_jpeg = lambda *_: lambda stream, geometry: None  # type: ignore[assignment]
    pixels.BOX_RATIO = 1 << 30  # type: ignore[misc]
    try:
        return _decode_reduced(path, size, False)
    finally:
        imaging._direct_jpeg, pixels.BOX_RATIO = direct, ratio  # type: ignore[misc]


def _decoders(size: int) -> dict[str, Callable[[Path], int]]:
    return {
        "reduced-before": lambda p: _decode_before(p, size),
        "whole": lambda p: _decode_whole(p, size, False),
        "whole+preview": lambda p: _decode_whole(p, size, True),
        "reduced": lambda p: _decode_reduced(p, size, False),
        "reduced+preview": lambda p: _decode_reduced(p, size, True),
        "reduced+keep": lambda p: _decode_reduced(p, size, False, keep=True),
        "reduced-inprocess": lambda p: _decode_reduced(p, size, False, isolated=False),
    }


def _files(folder: Path) -> list[Path]:
    """The page files of ``folder`` and its subfolders (the A4 mix of ``--a4`` keeps one per class)."""
    suffixes = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf"}
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.suffix in suffixes
    )


def time_modes(modes: list[str], folder: Path, size: int) -> dict[str, dict[str, list[float]]]:
    """Every file decoded in every mode in turn (the order rotating from file to file), so that a change
    of load on a shared machine falls on all modes alike; {mode: {format: [pages, seconds]}}."""
    decoders = _decoders(size)
    cv2.setNumThreads(1)
    files = _files(folder)
    for mode in modes:
        decoders[mode](files[0])  # imports and the render process started before the clock
    timed: dict[str, dict[str, list[float]]] = {mode: {} for mode in modes}
    for n, path in enumerate(files):
        for mode in modes[n % len(modes) :] + modes[: n % len(modes)]:
            started = time.perf_counter()
            pages = decoders[mode](path)
            entry = timed[mode].setdefault(path.suffix.lstrip("."), [0, 0.0])
            entry[0] += pages
            entry[1] += time.perf_counter() - started
    return timed


def peak_of(mode: str, folder: Path, size: int) -> float:
    """MB the resident set grew to over its baseline while decoding every file in ``mode``."""
    decode = _decoders(size)[mode]
    cv2.setNumThreads(1)
    files = _files(folder)
    decode(files[0])
    baseline = _status_kb("VmRSS")
    for path in files:
        decode(path)
    return (_status_kb("VmHWM") - baseline) / 1024


def run_mode(mode: str, folder: Path, size: int) -> dict[str, Any]:
    """One mode alone: pages, seconds per format and peak memory (for a fresh process)."""
    per_format = time_modes([mode], folder, size)[mode]
    return _result(mode, per_format, peak_of(mode, folder, size))


def _result(mode: str, per_format: dict[str, list[float]], peak_mb: float) -> dict[str, Any]:
    return {
        "mode": mode,
        "pages": sum(int(v[0]) for v in per_format.values()),
        "seconds": sum(v[1] for v in per_format.values()),
        "per_format": per_format,
        "peak_mb": peak_mb,
    }


def _in_child(args: list[str]) -> Any:
    cmd = [sys.executable, "-m", "docsort.bench_decode", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: list[dict[str, Any]]) -> str:
    formats = sorted({f for r in results for f in r["per_format"]})
    head = (
        f"{'mode':<18} {'pages/s':>8} " + " ".join(f"{f + ' p/s':>9}" for f in formats) + f" {'peak MB':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        cells = " ".join(f"{v[0] / v[1]:>9.1f}" for f in formats for v in [r["per_format"].get(f, [0, 1])])
        lines.append(f"{r['mode']:<18} {r['pages'] / r['seconds']:>8.1f} {cells} {r['peak_mb']:>8.0f}")
    base = next((r for r in results if r["mode"] == "whole"), None)
    new = next((r for r in results if r["mode"] == "reduced"), None)
    if base and new:
        lines.append(f"reduced / whole: {base['seconds'] / new['seconds']:.2f}x the pages per second")
    before = next((r for r in results if r["mode"] == "reduced-before"), None)
    if before and new:
        lines.append(
            f"reduced / reduced-before: {before['seconds'] / new['seconds']:.2f}x the pages per second"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--folder", type=Path, help="A4 files to decode (made here when absent or empty)")
    parser.add_argument("--size", type=int, default=64, help="model input side, pixels")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--peak", help=argparse.SUPPRESS)
    parser.add_argument("--time", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak:
        print(json.dumps(peak_of(args.peak, args.folder, args.size)))
        return
    if args.time:
        print(json.dumps(time_modes(args.time.split(","), args.folder, args.size)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "a4"
        if not folder.is_dir() or not any(folder.iterdir()):
            from docsort.synth_a4_files import A4Options, generate_a4

            made = generate_a4(folder, A4Options(pages=args.pages, unlabelled=True), progress=False)
            rate = made.pages / made.seconds
            print(f"made {made.pages} A4 pages in {made.seconds:.1f} s ({rate:.1f} pages/s)")
        common = ["--folder", str(folder), "--size", str(args.size)]
        timed = _in_child(["--time", args.modes, *common])
        peaks = {mode: _in_child(["--peak", mode, *common]) for mode in timed}
        results = [_result(mode, per_format, peaks[mode]) for mode, per_format in timed.items()]
        print(report(results))
        print(json.dumps({"size": args.size, "results": results, "numpy": np.__version__}))


if __name__ == "__main__":
    main()
