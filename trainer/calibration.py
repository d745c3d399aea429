"""Temperature scaling fitted on validation scores, expected calibration error, reliability diagrams.

TensorFlow-free (numpy and matplotlib), so it runs on a worker host as well as after training.

Temperature scaling divides the logits by one number ``T`` fitted by minimising the negative
log-likelihood of the validation labels; it changes confidence, never the predicted class. When only
softmax probabilities are at hand (the exported graph's ``probs``), ``log(probs)`` serves as logits:
``log softmax(z) = z - logsumexp(z)`` differs from ``z`` by one constant per row, and softmax ignores
such a constant, so ``softmax(log(p) / T) == softmax(z / T)`` exactly. This is how the worker
applies the manifest's ``temperature`` to the ``probs`` output (``worker.inference.apply_temperature``,
the one implementation, with probabilities floored at 1e-12). Every score here is first put in that
same worker view (logits through a float32 softmax, floor 1e-12, log), so the temperature and the
thresholds are fitted on the numbers the worker will compute, also for pages so confident that the
floor matters. ``trainer.confidence`` puts this together with the thresholds after training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from schema.errors import DocsortError
from schema.files import save_npz, write_atomic
from schema.logs import get_logger
from worker.inference import PROB_FLOOR, softmax
from worker.validation_scores import (
    INT8_SCORES_FILE,
    SCORES_FILE,
    ValidationScoresUnavailable,
    Variant,
    read_validation_scores,
)

log = get_logger(__name__)

T_MIN, T_MAX = 0.05, 20.0
CALIBRATION_FILE = "calibration.json"
RELIABILITY_PNG = "reliability.png"
ScoreKind = Literal["logits", "probs"]


class CalibrationError(DocsortError):
    """Validation scores that cannot be calibrated (wrong shape, no rows, labels out of range)."""


def as_logits(scores: np.ndarray, kind: ScoreKind) -> np.ndarray:
    """Scores in the worker's view: ``log(max(p, 1e-12))`` of the float32 softmax probabilities.

    For probabilities this is ``log(p)`` (exact logits up to a per-row constant); raw logits go
    through the float32 softmax the exported graph computes first.
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] == 0:
        raise CalibrationError(f"scores must be a non-empty N×K array with K ≥ 2, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise CalibrationError("scores hold NaN or infinite values")
    if kind == "probs":
        if arr.min() < 0 or arr.max() > 1 + 1e-4:
            raise CalibrationError("probabilities must lie in [0, 1]; pass kind='logits' for raw scores")
        return np.log(np.clip(arr, PROB_FLOOR, None))
    probs32 = softmax(arr).astype(np.float32)
    return np.log(np.clip(probs32.astype(np.float64), PROB_FLOOR, None))


def check_labels(labels: np.ndarray, n_rows: int, n_classes: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.shape != (n_rows,):
        raise CalibrationError(f"labels must be a vector of {n_rows} class indices, got shape {lab.shape}")
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise CalibrationError(f"labels must lie in 0..{n_classes - 1}")
    return lab.astype(np.int64)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / T)``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    zmax = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, tol: float = 1e-5) -> float:
    """The ``T`` in [0.05, 20] minimising validation NLL (golden-section search on log T).

    NLL is convex in ``1/T``, hence unimodal in ``log T``, so the search finds the global minimum.
    """
    z = np.asarray(logits, dtype=np.float64)
    lab = check_labels(labels, z.shape[0], z.shape[1])
    lo, hi = math.log(T_MIN), math.log(T_MAX)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(z, lab, math.exp(a)), nll(z, lab, math.exp(b))
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(z, lab, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(z, lab, math.exp(b))
    return float(math.exp((lo + hi) / 2))


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> list[dict[str, float]]:
    """Equal-width confidence bins: count, mean confidence and accuracy of the top-1 prediction."""
    p = np.asarray(probs, dtype=np.float64)
    lab = check_labels(labels, p.shape[0], p.shape[1])
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == lab
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = index == b
        count = int(mask.sum())
        bins.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": count,
                "confidence": float(conf[mask].mean()) if count else 0.0,
                "accuracy": float(correct[mask].mean()) if count else 0.0,
            }
        )
    return bins


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over equal-width bins."""
    bins = reliability_bins(probs, labels, n_bins)
    total = sum(b["count"] for b in bins)
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / max(total, 1))


def plot_reliability(
    before: np.ndarray, after: np.ndarray, labels: np.ndarray, path: Path, n_bins: int = 15
) -> Path:
    """Reliability diagram PNG, before and after temperature scaling side by side."""
    import matplotlib  # heavy (0.3 s): only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    for ax, probs, title in ((axes[0], before, "before"), (axes[1], after, "after temperature")):
        bins = reliability_bins(probs, labels, n_bins)
        centers = [(b["lower"] + b["upper"]) / 2 for b in bins if b["count"]]
        accs = [b["accuracy"] for b in bins if b["count"]]
        confs = [b["confidence"] for b in bins if b["count"]]
        ax.bar(centers, accs, width=1.0 / n_bins, edgecolor="black", alpha=0.7, label="accuracy")
        ax.plot(confs, accs, "o", color="tab:red", markersize=3, label="mean confidence")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        ece = expected_calibration_error(probs, labels, n_bins)
        ax.set_title(f"{title}: ECE {ece:.4f}")
        ax.set_xlabel("confidence (top class)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def calibration_summary(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, float]:
    before, after = softmax(logits), softmax(logits, temperature)
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(before, labels),
        "ece_after": expected_calibration_error(after, labels),
        "nll_before": nll(logits, labels, 1.0),
        "nll_after": nll(logits, labels, temperature),
        "accuracy": float(np.mean(after.argmax(axis=1) == labels)),
        "n": len(labels),
    }


def save_scores(
    report_dir: Path,
    logits: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    variant: Variant = "fp32",
) -> Path:
    """Store validation scores (worker-view logits, see :func:`as_logits`) and labels for ``retarget``."""
    report_dir.mkdir(parents=True, exist_ok=True)
    name = SCORES_FILE if variant == "fp32" else INT8_SCORES_FILE
    path = report_dir / name
    arrays = {
        "logits": logits.astype(np.float64),
        "labels": labels,
        "class_names": np.array(list(class_names)),
    }
    write_atomic(path, lambda tmp: save_npz(tmp, arrays))
    return path


def load_scores(
    report_dir: Path, class_names: Sequence[str], variant: Variant = "fp32"
) -> tuple[np.ndarray, np.ndarray]:
    """The stored validation logits and labels of a version's ``report/`` (see :func:`save_scores` and
    :func:`worker.validation_scores.read_validation_scores`, which reads them for the worker too)."""
    try:
        stored = read_validation_scores(Path(report_dir), class_names, variant)
    except ValidationScoresUnavailable as exc:
        raise CalibrationError(str(exc)) from exc
    return stored.logits, check_labels(stored.labels, stored.logits.shape[0], stored.logits.shape[1])


def calibrate(
    scores: np.ndarray,
    labels: np.ndarray,
    report_dir: Path | None = None,
    kind: ScoreKind = "logits",
) -> tuple[float, dict[str, float]]:
    """Fit ``T`` and, with ``report_dir``, write ``calibration.json`` and ``reliability.png``."""
    logits = as_logits(scores, kind)
    lab = check_labels(labels, logits.shape[0], logits.shape[1])
    temperature = fit_temperature(logits, lab)
    summary = calibration_summary(logits, lab, temperature)
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / CALIBRATION_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        plot_reliability(softmax(logits), softmax(logits, temperature), lab, report_dir / RELIABILITY_PNG)
    log.info("temperature fitted", **summary)
    return temperature, summary
