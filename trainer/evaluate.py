"""``docsort evaluate``: run an exported model (ONNX Runtime, no TensorFlow) over a labelled folder.

Pages are decoded and resized by :mod:`worker.imaging` with the manifest's input spec, exactly as the
worker does; each page of a multi-page file counts as one example with its folder's label. The
report also gives, at the manifest's temperature and thresholds, the review rate and the accuracy of
the automatically routed pages with its exact one-sided lower confidence bound (Clopper–Pearson).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from schema.logs import get_logger
from schema.manifest import ModelManifest, load_manifest
from trainer.confidence import chosen_level
from trainer.data import LabelledFile, scan_folder
from trainer.guarantee import DEFAULT_CONFIDENCE_LEVEL, lower_bound
from trainer.metrics import classification_report
from trainer.onnx_run import onnx_session, run_onnx
from trainer.thresholds import decision_metrics
from worker.imaging import UnreadableImage, load_model_inputs
from worker.inference import apply_temperature

log = get_logger(__name__)


@dataclass
class Scored:
    """Pages of labelled files run through one version (ONNX Runtime, the worker's decoding)."""

    probs: np.ndarray  # N x classes, the graph's probabilities (before the manifest's temperature)
    labels: np.ndarray
    unreadable: list[dict[str, str]] = field(default_factory=list)


def score_files(
    files: Sequence[LabelledFile],
    version_dir: Path,
    *,
    batch_size: int = 64,
    threads: int | None = None,
    progress: bool = True,
) -> Scored:
    """Every page of ``files`` through the version's model; unreadable files are listed, not fatal."""
    manifest = load_manifest(version_dir)
    session = onnx_session(manifest.model_file(version_dir), threads)
    size = (manifest.input.height, manifest.input.width)
    labels: list[int] = []
    probs: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    unreadable: list[dict[str, str]] = []

    def flush() -> None:
        if pending:
            scores, _ = run_onnx(session, manifest.input, np.stack(pending), batch_size)
            probs.append(scores)
            pending.clear()

    for item in tqdm(files, desc="evaluate", disable=not progress, leave=False):
        try:
            pages = load_model_inputs(item.path, size, manifest.input.resize, manifest.input.pad_value)
        except UnreadableImage as exc:
            log.warning("unreadable_file_skipped", path=str(item.path), reason=exc.reason)
            unreadable.append({"path": str(item.path), "reason": exc.reason})
            continue
        pending.extend(pages)
        labels.extend([item.label] * len(pages))
        if len(pending) >= batch_size:
            flush()
    flush()
    n_classes = len(manifest.class_names)
    all_probs = np.concatenate(probs) if probs else np.zeros((0, n_classes), np.float32)
    return Scored(all_probs, np.asarray(labels, np.int64), unreadable)


def routed_metrics(probs: np.ndarray, labels: np.ndarray, manifest: ModelManifest) -> dict[str, Any]:
    """Review rate and accuracy of the automatically routed pages at the manifest's temperature and
    thresholds, with the exact lower bound at the level the thresholds were chosen for (0.95 without a
    guarantee)."""
    calibrated = apply_temperature(probs, manifest.temperature)
    decided = decision_metrics(calibrated, labels, manifest.thresholds, manifest.class_names)
    out = {key: decided[key] for key in ("review_rate", "auto_accuracy", "n_auto", "n_auto_correct")}
    level = chosen_level(manifest) or DEFAULT_CONFIDENCE_LEVEL
    out["confidence_level"] = level
    out["auto_accuracy_lower_bound"] = lower_bound(decided["n_auto_correct"], decided["n_auto"], level)
    return out


def evaluate_folder(
    data_dir: Path | str,
    version_dir: Path | str,
    *,
    batch_size: int = 64,
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Metrics of the model in ``version_dir`` on ``data_dir/<class>/...``; unreadable files are listed."""
    started = time.perf_counter()
    version_dir = Path(version_dir)
    manifest = load_manifest(version_dir)
    scan = scan_folder(data_dir, class_names=manifest.class_names)
    scored = score_files(scan.files, version_dir, batch_size=batch_size, threads=threads, progress=progress)
    report = classification_report(scored.labels, scored.probs, manifest.class_names)
    report.update(routed_metrics(scored.probs, scored.labels, manifest))
    report["unreadable"] = scored.unreadable
    report["model"] = {"name": manifest.name, "version": manifest.version, "path": str(version_dir)}
    report["data_dir"] = str(Path(data_dir))
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report
