"""Two model versions side by side on A4 pages at 300 dpi (a benchmark, not a test; no TensorFlow).

``python -m trainer.bench_models VERSION_A VERSION_B``: a multi-page A4 TIFF (300 dpi, G4, text-like
lines) is written to a temporary folder; in each round, interleaved, the worker's decoder turns the file
into model inputs and each version's model (the worker's own ``load_model``) classifies a batch of those
pages with its CAM. Printed: the median milliseconds per page of decoding and of each model, the ratio
of the two models, and pages per second of decode + model for each.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from schema.logs import configure_logging
from trainer.bench_guarantee import machine
from worker.imaging import load_model_inputs
from worker.inference import load_model

A4_300_DPI = (2480, 3508)


def a4_text_pages(path: Path, pages: int, seed: int = 0) -> Path:
    """A multi-page bilevel TIFF (G4) of A4 pages at 300 dpi with lines of word-like bars."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(pages):
        page = Image.new("1", A4_300_DPI, 1)
        draw = ImageDraw.Draw(page)
        for y in range(300, 3200, 60):
            x = 250
            while x < 2200:
                width = int(rng.integers(40, 260))
                draw.rectangle([x, y, min(x + width, 2230), y + 28], fill=0)
                x += width + int(rng.integers(20, 40))
        frames.append(page)
    frames[0].save(path, save_all=True, append_images=frames[1:], compression="group4", dpi=(300, 300))
    return path


def median_seconds(contenders: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each contender over ``rounds`` interleaved rounds, after one untimed round."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_index in range(rounds + 1):
        for name, run in contenders.items():
            started = time.perf_counter()
            run()
            if round_index:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def compare(version_a: Path, version_b: Path, pages: int, batch: int, threads: int, rounds: int) -> str:
    models = {
        "A": load_model(version_a, "cpu", threads, batch),
        "B": load_model(version_b, "cpu", threads, batch),
    }
    sizes = {m.input_size for m in models.values()}
    if len(sizes) != 1:
        raise SystemExit(f"the two versions take different inputs {sorted(sizes)}: decode would differ")
    size = sizes.pop()
    with tempfile.TemporaryDirectory(prefix="docsort-bench-") as tmp:
        tiff = a4_text_pages(Path(tmp) / "a4.tif", pages)
        spec = models["A"].manifest.input
        decoded = load_model_inputs(tiff, size, spec.resize, spec.pad_value)
        stack = np.stack([decoded[i % len(decoded)] for i in range(batch)])
        contenders: dict[str, Callable[[], object]] = {
            "decode": lambda: load_model_inputs(tiff, size, spec.resize, spec.pad_value)
        }
        for key, model in models.items():
            contenders[key] = partial(model.run, stack)
        seconds = median_seconds(contenders, rounds)
    decode_ms = 1000 * seconds["decode"] / pages
    ms = {key: 1000 * seconds[key] / batch for key in models}
    lines = [
        f"machine: {machine()}, {threads or 'all'} ONNX Runtime thread(s); {pages} A4 pages at 300 dpi "
        f"(G4 TIFF) decoded to {size[0]}×{size[1]}, models on batches of {batch}, median of {rounds} rounds",
        "",
        "| | CAM grid | ms per page | pages/s, decode + model |",
        "|---|---|---|---|",
        f"| decode (worker.imaging) | | {decode_ms:.2f} | |",
    ]
    for key, model in models.items():
        grid = "×".join(str(v) for v in model.manifest.cam_shape) or "?"
        name = f"{key}: {model.manifest.name}/{model.manifest.version}"
        lines.append(f"| {name} | {grid} | {ms[key]:.3f} | {1000 / (decode_ms + ms[key]):.1f} |")
    lines.append(f"\nmodel B / model A time per page: {ms['B'] / ms['A']:.2f}")
    lines.append(f"end to end B / A pages per second: {(decode_ms + ms['A']) / (decode_ms + ms['B']):.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.bench_models", description=__doc__)
    parser.add_argument("version_a", type=Path)
    parser.add_argument("version_b", type=Path)
    parser.add_argument("--pages", type=int, default=10, help="pages of the A4 file")
    parser.add_argument("--batch", type=int, default=256, help="pages per model run")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (0: all cores)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    print(compare(args.version_a, args.version_b, args.pages, args.batch, args.threads, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
