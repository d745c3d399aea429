"""Static INT8 quantization of a model version (ONNX Runtime, QDQ format), checked against FP32.

TensorFlow-free. ``model.int8.onnx`` is written beside ``model.onnx`` (which is never touched):

- Calibration (activation ranges, MinMax) runs on up to ``n_calib`` pages of the version's TRAINING
  split, decoded by :mod:`worker.imaging` exactly as a worker decodes pages.
- Only the backbone is quantized: the nodes that ``probs`` and ``cam`` both depend on. The head
  (pooling, dense, softmax) and the CAM branch stay float. A quantized softmax would leave the
  probabilities only 256 levels, too coarse for a review threshold such as 0.997, and the ``cam``
  output keeps its float layout, so the worker draws overlays from an INT8 model unchanged.
- The INT8 model's labels are compared with FP32's on every VALIDATION page. Below ``min_agreement``
  (99%) it is written but marked unusable in the manifest, with the reason; the worker then keeps
  loading FP32 (``ModelManifest.model_file``).
- When usable (and ``prefer_int8``), the manifest's ``load`` becomes ``int8`` and the review
  thresholds are chosen again on the INT8 validation scores, so they meet the target for the model
  that is actually loaded; ``retarget`` then works from those scores as well.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from schema.errors import DocsortError
from schema.logs import get_logger
from schema.manifest import QuantizedSpec, load_manifest, sha256_file, write_manifest
from trainer.calibration import SCORES_FILE, as_logits, load_scores, save_scores
from trainer.confidence import chosen_level, retarget
from trainer.onnx_parts import name_nodes, split_parts
from trainer.onnx_run import make_session, run_outputs
from trainer.scoring import decode_for, sample_files, version_split
from trainer.thresholds import choose_thresholds, decision_metrics
from worker.inference import prepare_input, softmax

log = get_logger(__name__)

INT8_FILE = "model.int8.onnx"
INT8_REPORT = "int8.json"
MIN_AGREEMENT = 0.99
DEFAULT_TARGET = 0.995


class QuantizeError(DocsortError):
    """A model version cannot be quantized: no data, graph not of the contract, quantizer failure."""


@dataclass
class Int8Report:
    file: str
    sha256: str
    label_agreement: float
    usable: bool
    note: str
    n_val: int
    n_calib: int
    cam_correlation: float | None
    accuracy: dict[str, float] = field(default_factory=dict)
    review_rate: dict[str, float] = field(default_factory=dict)
    auto_accuracy: dict[str, float | None] = field(default_factory=dict)
    latency_ms_per_page: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class _Batches:
    """ONNX Runtime's calibration data reader over prepared input batches."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self.input_name, self.batches, self.index = input_name, batches, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.batches):
            return None
        self.index += 1
        return {self.input_name: self.batches[self.index - 1]}

    def rewind(self) -> None:
        self.index = 0


def quantize_onnx(
    fp32: Path, out: Path, calib: list[np.ndarray], probs: str = "probs", cam: str = "cam"
) -> int:
    """Write the QDQ INT8 model of ``fp32`` to ``out`` (atomically); return how many nodes were quantized."""
    import onnx  # the `train` extra, and onnxruntime's quantization tools: only when quantizing
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="docsort-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
            model = onnx.load(str(pre))
        except Exception as exc:  # the pre-pass is an optimisation: quantize the graph as it is
            log.warning("int8_preprocess_skipped", reason=str(exc))
            model = onnx.load(str(fp32))
        name_nodes(model)
        backbone, _ = split_parts(model, probs, cam)
        nodes = [model.graph.node[i].name for i in sorted(backbone)]
        onnx.save(model, str(pre))
        staged = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        try:
            quantize_static(
                str(pre),
                str(staged),
                _Batches(model.graph.input[0].name, calib),  # type: ignore[arg-type]
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                nodes_to_quantize=nodes,
                calibrate_method=CalibrationMethod.MinMax,
            )
        except Exception as exc:
            staged.unlink(missing_ok=True)
            raise QuantizeError(f"{fp32}: ONNX Runtime could not quantize it ({exc})") from exc
        os.replace(staged, out)
    return len(nodes)


def cam_correlation(cam_a: np.ndarray, cam_b: np.ndarray, labels: np.ndarray) -> float | None:
    """Mean Pearson correlation of two CAM outputs for each page's predicted class."""
    if cam_a.shape != cam_b.shape or cam_a.ndim != 4:
        return None
    values = []
    for i, c in enumerate(labels):
        a, b = cam_a[i, ..., c].ravel(), cam_b[i, ..., c].ravel()
        if a.std() > 1e-9 and b.std() > 1e-9:
            values.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(values)) if values else 1.0


def _timed_outputs(
    session: Any, manifest: Any, images: np.ndarray, desc: str
) -> tuple[list[np.ndarray], float]:
    started = time.perf_counter()
    names = [manifest.outputs["probs"], manifest.outputs["cam"]]
    outs = run_outputs(session, manifest.input, images, names, desc=desc)
    return outs, 1000.0 * (time.perf_counter() - started) / max(len(images), 1)


def quantize_version(
    version_dir: Path | str,
    data_dir: Path | str,
    *,
    n_calib: int = 200,
    seed: int = 0,
    min_agreement: float = MIN_AGREEMENT,
    prefer_int8: bool = True,
    progress: bool = True,
) -> Int8Report:
    """Quantize ``version_dir``'s model, check it on the validation split, update the manifest."""
    started = time.perf_counter()
    version_dir = Path(version_dir)
    manifest = load_manifest(version_dir)
    train_files, val_files = version_split(manifest, Path(data_dir), version_dir / "report")
    calib = decode_for(manifest, sample_files(train_files, n_calib, seed), "calibration pages", progress)
    val = decode_for(manifest, val_files, "validation pages", progress)
    if len(calib) == 0 or len(val) == 0:
        raise QuantizeError(f"{data_dir}: no readable training or validation pages for calibration")
    batches = [prepare_input(calib.images[i : i + 16], manifest.input) for i in range(0, len(calib), 16)]
    fp32_path, int8_path = version_dir / manifest.onnx_file, version_dir / INT8_FILE
    n_nodes = quantize_onnx(fp32_path, int8_path, batches, manifest.outputs["probs"], manifest.outputs["cam"])
    label = "validation pages, {}" if progress else ""
    (p32, cam32), ms32 = _timed_outputs(make_session(fp32_path), manifest, val.images, label.format("FP32"))
    (p8, cam8), ms8 = _timed_outputs(make_session(int8_path), manifest, val.images, label.format("INT8"))
    agreement = float(np.mean(p32.argmax(axis=1) == p8.argmax(axis=1)))
    usable = agreement >= min_agreement and cam8.shape == cam32.shape and bool(np.isfinite(cam8).all())
    note = f"labels agree with FP32 on {100 * agreement:.2f}% of {len(val)} validation pages" + (
        "" if usable else f", below the required {100 * min_agreement:.0f}%: not usable, FP32 stays loaded"
    )
    report = Int8Report(
        file=INT8_FILE,
        sha256=sha256_file(int8_path),
        label_agreement=agreement,
        usable=usable,
        note=note,
        n_val=len(val),
        n_calib=len(calib),
        cam_correlation=cam_correlation(cam32, cam8, p32.argmax(axis=1)),
        latency_ms_per_page={"fp32": ms32, "int8": ms8},
    )
    _score_both(report, manifest, version_dir, p32, p8, val.labels)
    report.seconds = time.perf_counter() - started
    _update_manifest(version_dir, report, prefer_int8)
    log.info("int8_quantized", nodes=n_nodes, agreement=agreement, usable=usable, note=note)
    return report


def _score_both(report: Int8Report, manifest: Any, version_dir: Path, p32: Any, p8: Any, labels: Any) -> None:
    """Accuracy and review rate at the target, FP32 and INT8 each at thresholds chosen on its own scores."""
    names, temperature = manifest.class_names, manifest.temperature
    target = manifest.thresholds.target_auto_accuracy or DEFAULT_TARGET
    report_dir = version_dir / "report"
    if not (report_dir / SCORES_FILE).is_file():
        save_scores(report_dir, as_logits(p32, "probs"), labels, names)
    save_scores(report_dir, as_logits(p8, "probs"), labels, names, variant="int8")
    fp32_logits, fp32_labels = load_scores(report_dir, names)
    for variant, logits, lab in (
        ("fp32", fp32_logits, fp32_labels),
        ("int8", as_logits(p8, "probs"), labels),
    ):
        calibrated = softmax(logits, temperature)
        choice = choose_thresholds(calibrated, lab, names, target, confidence_level=chosen_level(manifest))
        report.accuracy[variant] = float(np.mean(calibrated.argmax(axis=1) == lab))
        report.review_rate[variant] = choice.review_rate
        report.auto_accuracy[variant] = choice.auto_accuracy
    at_fp32 = decision_metrics(
        softmax(as_logits(p8, "probs"), temperature), labels, manifest.thresholds, names
    )
    report.auto_accuracy["int8_at_fp32_thresholds"] = at_fp32["auto_accuracy"]
    report.review_rate["int8_at_fp32_thresholds"] = at_fp32["review_rate"]


def _update_manifest(version_dir: Path, report: Int8Report, prefer_int8: bool) -> None:
    manifest = load_manifest(version_dir)
    spec = QuantizedSpec(
        file=report.file,
        sha256=report.sha256,
        label_agreement=report.label_agreement,
        usable=report.usable,
        note=report.note,
    )
    load = "int8" if report.usable and prefer_int8 else "fp32"
    load_changed = load != manifest.load
    metrics = {**manifest.metrics, "int8": asdict(report)}
    write_manifest(version_dir, manifest.model_copy(update={"int8": spec, "load": load, "metrics": metrics}))
    report_dir = version_dir / "report"
    (report_dir / INT8_REPORT).write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    if load == "int8" or load_changed:  # thresholds for the model the worker will load
        target = manifest.thresholds.target_auto_accuracy or DEFAULT_TARGET
        retarget(version_dir, target, confidence_level=chosen_level(manifest))
