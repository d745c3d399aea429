"""``docsort bench inference``: ONNX Runtime against Keras ``predict`` and a direct Keras call.

One model (the trainer's own classifier, random weights: speed does not depend on them), exported by the
trainer's own ONNX export and loaded by the worker's own inference code, runs the same batch three ways
in interleaved rounds. TensorFlow is imported inside :func:`run`, never at module level.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from docsort.bench.common import BenchError, ratio, write_version
from docsort.bench.docs import Section, num, percent, plain
from docsort.bench.flops import count_flops
from docsort.bench.machine import Machine
from docsort.bench.timing import interleaved
from trainer.tfsetup import import_tensorflow
from worker.inference import CUDA, load_model

SECTION = Section(
    name="inference",
    title="## Inference: ONNX Runtime against Keras (`docsort bench inference`)",
    intro="""
The same model (the trainer's classifier with random weights, `weights=None`: speed does not depend on
them), exported by the trainer's ONNX export and loaded by the worker's inference code, runs one batch of
random pages three ways, in interleaved rounds (median of the rounds, after a warm-up): ONNX Runtime
FP32 (the worker's session, which also computes the `cam` output), Keras `model.predict`, and a direct
Keras call `model(x, training=False)`. Every engine gets the machine's cores as threads.

*Share of peak* = achieved FLOP/s ÷ the machine's peak FP32 rate. FLOPs per image are counted from the
ONNX graph (multiply-adds of Conv/MatMul/Gemm, 2 FLOPs each, shapes from ONNX shape inference; bias,
activations and pooling left out). Peak = cores × clock × FP32 FLOPs per cycle per core, the latter from
the CPU's SIMD flags in `/proc/cpuinfo`: AVX-512+FMA 64 (16 lanes × 2 × 2 FMA units), AVX2+FMA 32,
AVX 16, SSE 8. The clock is the one `/proc/cpuinfo` reports; turbo above it would make the shares high.
""",
    columns=[
        ("backbone", plain("backbone")),
        ("input", plain("image_size")),
        ("batch", plain("batch")),
        ("device", plain("device")),
        ("GFLOP/img", num("gflops_per_image", 2)),
        ("ORT img/s", num("ort_images_per_s")),
        ("Keras predict img/s", num("keras_predict_images_per_s")),
        ("Keras call img/s", num("keras_call_images_per_s")),
        ("ORT ÷ predict", num("ort_vs_keras_predict", 2, "×")),
        ("ORT ÷ call", num("ort_vs_keras_call", 2, "×")),
        ("ORT % peak", percent("ort_share_of_peak")),
        ("predict % peak", percent("keras_predict_share_of_peak")),
        ("call % peak", percent("keras_call_share_of_peak")),
    ],
    key=("backbone", "image_size", "batch", "device"),
    footer="""
**CUDA (FP32 and FP16)** needs a GPU host with `onnxruntime-gpu` (the `gpu` extra) and a CUDA build of
TensorFlow; none is at hand here, so there are no GPU rows. On such a host:
`docsort bench inference --backbone vgg16 --image-size 224 --batch 8 --provider cuda --write-docs` and
the same with `--fp16` (the graph converted to FP16 with FP32 input and outputs; Keras under the
`mixed_float16` policy).
""",
)


def _export(backbone: str, size: int, threads: int, fp16: bool, work: Path) -> tuple[Any, Path]:
    # The trainer's model building imports TensorFlow: only when this benchmark runs.
    from trainer.backbones import build_classifier
    from trainer.export import export_onnx

    import_tensorflow(threads or None, seed=0, deterministic=False)
    import keras

    if fp16:
        keras.mixed_precision.set_global_policy("mixed_float16")

    clf = build_classifier(backbone, size, 2, "none")
    onnx_path = work / "export.onnx"
    export_onnx(clf, onnx_path)
    if fp16:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        onnx.save(convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True), str(onnx_path))
    return clf, onnx_path


def run(
    backbone: str,
    image_size: int,
    batch: int,
    machine: Machine,
    *,
    rounds: int = 10,
    threads: int = 0,
    provider: str = "cpu",
    fp16: bool = False,
    seed: int = 0,
) -> dict[str, Any]:

    threads = threads or machine.cores
    with tempfile.TemporaryDirectory(prefix="docsort-bench-") as tmp:
        clf, onnx_path = _export(backbone, image_size, threads, fp16, Path(tmp))
        size = clf.image_size
        folder = write_version(Path(tmp) / "bench" / "1", onnx_path, backbone, size, list(clf.cam_shape))
        model = load_model(folder, provider, threads, batch)  # type: ignore[arg-type]
        if provider == "cuda" and model.provider != CUDA:
            raise BenchError("the CUDA execution provider is not available here: run this on a GPU host")
        flops = count_flops(folder / "model.onnx")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (batch, size[0], size[1], 3), dtype=np.uint8).astype(np.float32)
    keras_model = clf.model
    timed = interleaved(
        {
            "ort": lambda: model.run(x),
            "keras_predict": lambda: keras_model.predict(x, batch_size=batch, verbose=0),
            "keras_call": lambda: np.asarray(keras_model(x, training=False)),
        },
        rounds=rounds,
        warmup=2,
        desc=f"{backbone} {size[0]} px, batch {batch}",
    )
    diff = float(np.abs(model.run(x).probs - np.asarray(keras_model(x, training=False))).max())
    return _result(backbone, size[0], batch, machine, threads, provider, fp16, flops, timed, rounds, diff)


def _result(
    backbone: str,
    size: int,
    batch: int,
    machine: Machine,
    threads: int,
    provider: str,
    fp16: bool,
    flops: int,
    timed: dict[str, Any],
    rounds: int,
    diff: float,
) -> dict[str, Any]:
    rates = {name: t.rate(batch) for name, t in timed.items()}
    peak = machine.peak_gflops(threads) * 1e9 if provider == "cpu" else None
    result: dict[str, Any] = {
        "backbone": backbone,
        "image_size": size,
        "batch": batch,
        "device": f"{provider} {'fp16' if fp16 else 'fp32'}",
        "threads": threads,
        "rounds": rounds,
        "gflops_per_image": flops / 1e9,
        "peak_gflops": peak / 1e9 if peak else None,
        "max_abs_probs_diff": diff,
    }
    for name, rate in rates.items():
        result[f"{name}_images_per_s"] = rate
        result[f"{name}_share_of_peak"] = rate * flops / peak if peak else None
    result["ort_vs_keras_predict"] = ratio(rates["ort"], rates["keras_predict"])
    result["ort_vs_keras_call"] = ratio(rates["ort"], rates["keras_call"])
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['backbone']} at {result['image_size']} px, batch {result['batch']}, {result['device']}, "
        f"{result['threads']} threads, {result['gflops_per_image']:.2f} GFLOP per image"
    ]
    for name, label in (
        ("ort", "ONNX Runtime"),
        ("keras_predict", "Keras predict"),
        ("keras_call", "Keras call"),
    ):
        share = result[f"{name}_share_of_peak"]
        share_text = f", {100 * share:.1f}% of peak" if share is not None else ""
        lines.append(f"  {label:<14} {result[f'{name}_images_per_s']:9.1f} images/s{share_text}")
    lines.append(
        f"  ratio ONNX Runtime / Keras predict {result['ort_vs_keras_predict']:.2f}x, "
        f"/ Keras call {result['ort_vs_keras_call']:.2f}x "
        f"(largest difference of class scores {result['max_abs_probs_diff']:.1e})"
    )
    return lines
