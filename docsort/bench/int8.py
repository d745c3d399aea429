"""``docsort bench int8``: ONNX Runtime static INT8 (QDQ) against FP32 on the same held-out pages.

The version folder is copied first (the benchmark never changes a model). The copy is quantized by the
trainer's own :func:`trainer.quantize.quantize_version` (activation ranges calibrated on pages of the
version's training split), and both graphs are then loaded by the worker's own inference code. Speed is
timed on one batch of held-out pages in interleaved rounds; labels are compared on every held-out page
(the version's validation split, which training never saw).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from docsort.bench.common import BenchError, ratio
from docsort.bench.docs import Section, num, percent, plain
from docsort.bench.machine import Machine
from docsort.bench.timing import interleaved
from schema.manifest import load_manifest, write_manifest
from trainer.scoring import decode_for, sample_files, version_split
from worker.inference import load_model

SECTION = Section(
    name="int8",
    title="## INT8: static quantization against FP32 (`docsort bench int8`)",
    intro="""
A trained version is copied and quantized by `docsort export --int8`'s own code (ONNX Runtime static
quantization, QDQ, per-channel INT8 weights and INT8 activations calibrated with MinMax on pages of the
version's training split; the head and the CAM branch stay float). FP32 and INT8 graphs are loaded by the
worker's inference code with the machine's cores as threads and timed on the same batch of held-out
pages in interleaved rounds (median). *Agreement* is the share of held-out pages (the version's
validation split, never trained on) given the same label by both; accuracy is against the true labels.
""",
    columns=[
        ("model", plain("model")),
        ("input", plain("image_size")),
        ("batch", plain("batch")),
        ("FP32 img/s", num("fp32_images_per_s")),
        ("INT8 img/s", num("int8_images_per_s")),
        ("INT8 ÷ FP32", num("speedup", 2, "×")),
        ("label agreement", percent("label_agreement", 2)),
        ("held-out pages", plain("n_heldout")),
        ("FP32 accuracy", percent("fp32_accuracy", 2)),
        ("INT8 accuracy", percent("int8_accuracy", 2)),
        ("calibration pages", plain("n_calib")),
    ],
    key=("model", "image_size", "batch"),
)


def _quantized_copies(version_dir: Path, data_dir: Path, work: Path, n_calib: int) -> tuple[Path, Path, Any]:
    """(FP32 folder, INT8 folder, quantization report) made from a copy of ``version_dir``."""
    from trainer.quantize import quantize_version  # needs onnx, of the `train` extra

    fp32_dir = work / "fp32"
    shutil.copytree(version_dir, fp32_dir)
    manifest = load_manifest(fp32_dir)
    write_manifest(fp32_dir, manifest.model_copy(update={"load": "fp32", "int8": None}))
    report = quantize_version(fp32_dir, data_dir, n_calib=n_calib, prefer_int8=False, progress=True)
    int8_dir = work / "int8"
    shutil.copytree(fp32_dir, int8_dir)
    quantized = load_manifest(int8_dir)
    assert quantized.int8 is not None
    spec = quantized.int8.model_copy(update={"usable": True})  # load it whatever its agreement
    write_manifest(int8_dir, quantized.model_copy(update={"load": "int8", "int8": spec}))
    return fp32_dir, int8_dir, report


def _held_out(version_dir: Path, data_dir: Path, limit: int) -> tuple[np.ndarray, np.ndarray]:

    manifest = load_manifest(version_dir)
    _, val_files = version_split(manifest, data_dir)
    if limit:
        val_files = sample_files(val_files, limit, seed=0)
    examples = decode_for(manifest, val_files, "held-out pages")
    if len(examples) == 0:
        raise BenchError(f"{data_dir}: no readable held-out pages for {version_dir}")
    return examples.images, examples.labels


def run(
    version_dir: Path,
    data_dir: Path,
    machine: Machine,
    *,
    batch: int = 32,
    rounds: int = 10,
    n_calib: int = 200,
    limit: int = 0,
    threads: int = 0,
) -> dict[str, Any]:

    threads = threads or machine.cores
    images, labels = _held_out(version_dir, data_dir, limit)
    with tempfile.TemporaryDirectory(prefix="docsort-bench-int8-") as tmp:
        fp32_dir, int8_dir, report = _quantized_copies(version_dir, data_dir, Path(tmp), n_calib)
        fp32 = load_model(fp32_dir, "cpu", threads, batch)
        int8 = load_model(int8_dir, "cpu", threads, batch)
    chunk = images[:batch]
    timed = interleaved(
        {"fp32": lambda: fp32.run(chunk), "int8": lambda: int8.run(chunk)},
        rounds=rounds,
        warmup=2,
        desc=f"FP32 and INT8, batch {len(chunk)}",
    )
    p32, p8 = fp32.run(images).probs.argmax(axis=1), int8.run(images).probs.argmax(axis=1)
    manifest = load_manifest(version_dir)
    rate32, rate8 = timed["fp32"].rate(len(chunk)), timed["int8"].rate(len(chunk))
    return {
        "model": f"{manifest.name}/{manifest.version} ({manifest.backbone})",
        "image_size": manifest.input.height,
        "batch": len(chunk),
        "threads": threads,
        "rounds": rounds,
        "fp32_images_per_s": rate32,
        "int8_images_per_s": rate8,
        "speedup": ratio(rate8, rate32),
        "label_agreement": float(np.mean(p32 == p8)),
        "n_heldout": len(images),
        "fp32_accuracy": float(np.mean(p32 == labels)),
        "int8_accuracy": float(np.mean(p8 == labels)),
        "n_calib": report.n_calib,
        "quantize_report_agreement": report.label_agreement,
        "cam_correlation": report.cam_correlation,
    }


def summary(result: dict[str, Any]) -> list[str]:
    return [
        f"{result['model']} at {result['image_size']} px, batch {result['batch']}, "
        f"{result['threads']} threads",
        f"  FP32 {result['fp32_images_per_s']:9.1f} images/s",
        f"  INT8 {result['int8_images_per_s']:9.1f} images/s  (ratio INT8 / FP32 {result['speedup']:.2f}x)",
        f"  labels agree on {100 * result['label_agreement']:.2f}% of {result['n_heldout']} held-out pages; "
        f"accuracy FP32 {100 * result['fp32_accuracy']:.2f}%, INT8 {100 * result['int8_accuracy']:.2f}%",
    ]
