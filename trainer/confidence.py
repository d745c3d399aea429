"""Confidence of a model version: temperature, review thresholds and their report, at training time
and afterwards (retarget, calibrate an older version). TensorFlow-free.

:func:`finalize_confidence` is the one call the trainer makes after training: it fits the temperature
(:mod:`trainer.calibration`), chooses the review thresholds for a target accuracy
(:mod:`trainer.thresholds`) and writes the report files (``calibration.json``, ``reliability.png``,
``risk_coverage.{json,png}``, ``confidence_scores.npz``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from schema.logs import get_logger
from schema.manifest import ModelManifest, Thresholds, load_manifest, write_manifest
from trainer.calibration import (
    CalibrationError,
    ScoreKind,
    as_logits,
    calibrate,
    check_labels,
    load_scores,
    save_scores,
)
from trainer.guarantee import DEFAULT_CONFIDENCE_LEVEL
from trainer.onnx_run import make_session, run_outputs
from trainer.risk_coverage import choose_and_report
from trainer.scoring import decode_for, version_split
from trainer.thresholds import ThresholdChoice
from worker.inference import softmax
from worker.validation_scores import loaded_variant

log = get_logger(__name__)


def finalize_confidence(
    val_scores: np.ndarray,
    val_labels: np.ndarray,
    class_names: Sequence[str],
    report_dir: Path,
    target: float = 0.995,
    kind: ScoreKind = "logits",
    confidence_level: float | None = DEFAULT_CONFIDENCE_LEVEL,
) -> tuple[float, Thresholds, dict[str, Any]]:
    """Calibrate, choose review thresholds for ``target``, write the report; return what the manifest needs.

    ``val_scores`` are the validation logits (``kind="logits"``) or softmax outputs (``kind="probs"``);
    ``confidence_level`` is the guarantee's (None: a point estimate, see :mod:`trainer.thresholds`).
    Returns ``(temperature, thresholds, metrics)``; ``metrics`` goes into the manifest's ``metrics``
    under ``"confidence"``.
    """
    logits = as_logits(val_scores, kind)
    lab = check_labels(val_labels, logits.shape[0], logits.shape[1])
    if len(class_names) != logits.shape[1]:
        raise CalibrationError(f"{len(class_names)} class names for {logits.shape[1]} score columns")
    report_dir = Path(report_dir)
    temperature, summary = calibrate(logits, lab, report_dir, kind="logits")
    save_scores(report_dir, logits, lab, class_names)
    calibrated = softmax(logits, temperature)
    choice = choose_and_report(
        calibrated, lab, class_names, target, report_dir, confidence_level=confidence_level
    )
    metrics: dict[str, Any] = {"calibration": summary, **choice.metrics()}
    return temperature, choice.thresholds, metrics


def chosen_level(manifest: ModelManifest) -> float | None:
    """The confidence level the manifest's thresholds were chosen at (None: a point estimate)."""
    guarantee = manifest.thresholds.guarantee
    return guarantee.confidence_level if guarantee is not None else None


def retarget(
    version_dir: Path | str,
    auto_accuracy: float,
    *,
    confidence_level: float | None = DEFAULT_CONFIDENCE_LEVEL,
    refit_temperature: bool = False,
    min_class_pages: int | None = None,
) -> ThresholdChoice:
    """Choose thresholds for a new target from the stored validation scores; rewrite only manifest.json.

    ``model.onnx`` (and ``model.int8.onnx``) are never opened for writing; the manifest is replaced
    atomically. With ``refit_temperature`` the temperature is fitted again on the same scores.
    ``confidence_level`` None chooses by point estimate.
    """
    version_dir = Path(version_dir)
    manifest = load_manifest(version_dir)
    report_dir = version_dir / "report"
    variant = loaded_variant(manifest)
    logits, labels = load_scores(report_dir, manifest.class_names, variant)
    temperature = manifest.temperature
    metrics = dict(manifest.metrics)
    confidence = dict(metrics.get("confidence") or {})
    if refit_temperature:
        temperature, confidence["calibration"] = calibrate(logits, labels, report_dir, kind="logits")
    choice = choose_and_report(
        softmax(logits, temperature),
        labels,
        manifest.class_names,
        auto_accuracy,
        report_dir,
        min_class_pages,
        variant,
        confidence_level,
    )
    confidence.update(choice.metrics())
    confidence["scored_on"] = variant
    metrics["confidence"] = confidence
    updated = manifest.model_copy(
        update={"thresholds": choice.thresholds, "temperature": temperature, "metrics": metrics}
    )
    write_manifest(version_dir, updated)
    log.info("retargeted", version_dir=str(version_dir), target=auto_accuracy, review_rate=choice.review_rate)
    return choice


def calibrate_version(
    version_dir: Path | str,
    data_dir: Path | str,
    target: float = 0.995,
    confidence_level: float | None = DEFAULT_CONFIDENCE_LEVEL,
) -> ThresholdChoice:
    """Calibrate an exported version after the fact: score its validation split with the FP32 ONNX model,
    fit the temperature, choose thresholds and rewrite manifest.json (the model files are untouched).

    Returns the :class:`trainer.thresholds.ThresholdChoice` now in the manifest.
    """
    version_dir = Path(version_dir)
    manifest = load_manifest(version_dir)
    _, val_files = version_split(manifest, Path(data_dir), version_dir / "report")
    val = decode_for(manifest, val_files, "validation pages")
    if len(val) == 0:
        raise CalibrationError(f"{data_dir}: no readable validation pages")
    session = make_session(version_dir / manifest.onnx_file)
    (probs,) = run_outputs(
        session, manifest.input, val.images, [manifest.outputs["probs"]], desc="score validation"
    )
    report_dir = version_dir / "report"
    temperature, thresholds, metrics = finalize_confidence(
        probs, val.labels, manifest.class_names, report_dir, target, "probs", confidence_level
    )
    merged = {**manifest.metrics, "confidence": {**metrics, "scored_on": "fp32"}}
    update = {"temperature": temperature, "thresholds": thresholds, "metrics": merged}
    write_manifest(version_dir, manifest.model_copy(update=update))
    # Again on the INT8 scores when INT8 is what the worker loads.
    return retarget(version_dir, target, confidence_level=confidence_level)
