"""The validation scores stored with a model version: the reference its live pages are compared with.

Training writes, in ``<version>/report/``, the validation pages' scores in the worker's view
(``confidence_scores.npz``: logits ``log(max(p, 1e-12))``, labels, class names; an INT8 twin when the
version loads its INT8 model) and, before calibration existed, only ``val_scores.json`` (the
probabilities). :func:`read_validation_scores` reads either; :func:`reference` applies the version's
temperature, so its probabilities are what a worker computes for those pages. The trainer retargets
thresholds from the same files (``trainer.calibration.load_scores`` reads them here).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from schema.errors import DocsortError
from schema.manifest import ModelManifest
from worker.inference import PROB_FLOOR, softmax

SCORES_FILE = "confidence_scores.npz"
INT8_SCORES_FILE = "confidence_scores.int8.npz"
TRAINER_SCORES_FILE = "val_scores.json"  # written by trainer.publish: class_names, labels, probs, sources
Variant = Literal["fp32", "int8"]  # which model's scores: the FP32 graph or its INT8 quantization


class ValidationScoresUnavailable(DocsortError):
    """A version's stored validation scores are missing, unreadable, or for other classes."""


@dataclass(frozen=True)
class StoredScores:
    logits: np.ndarray  # N x classes, worker view: log of the floored probabilities (before temperature)
    labels: np.ndarray  # N class indices
    path: Path


def loaded_variant(manifest: ModelManifest) -> Variant:
    """Which model the worker loads: its validation scores are the ones that describe it."""
    usable = manifest.int8 is not None and manifest.int8.usable
    return "int8" if manifest.load == "int8" and usable else "fp32"


def _checked(path: Path, logits: np.ndarray, labels: np.ndarray, names: Sequence[str], want: Sequence[str]):
    if list(names) != list(want):
        raise ValidationScoresUnavailable(
            f"{path}: scores are for classes {list(names)}, the manifest has {list(want)}"
        )
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] != len(want):
        raise ValidationScoresUnavailable(f"{path}: scores of shape {logits.shape} for {len(want)} classes")
    if not np.isfinite(logits).all():
        raise ValidationScoresUnavailable(f"{path}: scores hold NaN or infinite values")
    return StoredScores(logits, np.asarray(labels), path)


def read_validation_scores(
    report_dir: Path, class_names: Sequence[str], variant: Variant = "fp32"
) -> StoredScores:
    """The stored validation scores of a version's ``report/``; the trainer's ``val_scores.json``
    (probabilities, slightly coarser for the most confident pages) when no calibration file exists."""
    path = Path(report_dir) / (SCORES_FILE if variant == "fp32" else INT8_SCORES_FILE)
    trainer_scores = Path(report_dir) / TRAINER_SCORES_FILE
    if not path.is_file() and variant == "fp32" and trainer_scores.is_file():
        return _trainer_scores(trainer_scores, class_names)
    if not path.is_file():
        raise ValidationScoresUnavailable(
            f"{path}: no stored validation scores; they are written when a version is trained "
            "(or quantized, for INT8)"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            logits, labels, names = npz["logits"], npz["labels"], [str(n) for n in npz["class_names"]]
    except (OSError, ValueError, KeyError) as exc:
        raise ValidationScoresUnavailable(f"{path}: unreadable validation scores ({exc})") from exc
    return _checked(path, np.asarray(logits, np.float64), labels, names, class_names)


def _trainer_scores(path: Path, class_names: Sequence[str]) -> StoredScores:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        probs, labels, names = (
            np.asarray(raw["probs"], np.float64),
            np.asarray(raw["labels"]),
            raw["class_names"],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValidationScoresUnavailable(f"{path}: unreadable validation scores ({exc})") from exc
    if probs.ndim == 2 and probs.size and (probs.min() < 0 or probs.max() > 1 + 1e-4):
        raise ValidationScoresUnavailable(f"{path}: probabilities outside [0, 1]")
    return _checked(path, np.log(np.clip(probs, PROB_FLOOR, None)), labels, names, class_names)


@dataclass(frozen=True)
class Reference:
    """A version's validation pages as a worker sees them: calibrated probabilities and true labels."""

    probs: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    path: Path


def reference(version_dir: Path, manifest: ModelManifest) -> Reference:
    """The version's stored validation pages at its temperature (what the thresholds were chosen on)."""
    stored = read_validation_scores(
        Path(version_dir) / "report", manifest.class_names, loaded_variant(manifest)
    )
    probs = softmax(stored.logits, manifest.temperature)
    return Reference(probs, stored.labels.astype(np.int64), list(manifest.class_names), stored.path)
