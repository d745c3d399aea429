"""The risk–coverage curve: pages sent to review against the accuracy of the pages routed automatically.

TensorFlow-free. ``risk_coverage.json`` holds the chosen operating point (thresholds, review rate,
accuracy of the rest, the guarantee) and the curve of one global confidence threshold swept over every
validation value, with the exact lower confidence bound of each point's accuracy;
``risk_coverage.png`` plots both with the target and the chosen point. With a guarantee, a global
threshold is chosen where the bound, read from the strict end over the fixed candidate thresholds,
first falls below the target (:mod:`trainer.guarantee`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from schema.files import write_text_atomic
from trainer.calibration import Variant
from trainer.guarantee import DEFAULT_CONFIDENCE_LEVEL, lower_bound
from trainer.thresholds import EPS, ThresholdChoice, choose_thresholds
from worker.decide import top2

RISK_COVERAGE_JSON = "risk_coverage.json"
RISK_COVERAGE_PNG = "risk_coverage.png"
MAX_CURVE_POINTS = 1000


def risk_coverage_curve(
    probs: np.ndarray, labels: np.ndarray, bound_level: float = DEFAULT_CONFIDENCE_LEVEL
) -> list[dict[str, float | None]]:
    """Review rate against accuracy of the rest, sweeping one global confidence threshold (margin 0),
    with the exact one-sided lower bound (level ``bound_level``, pointwise) of that accuracy."""
    pred, conf, _ = top2(probs)
    correct = pred == np.asarray(labels)
    order = np.argsort(-conf, kind="stable")
    c, ok = conf[order], np.cumsum(correct[order])
    ends = np.flatnonzero(np.append(c[1:] != c[:-1], True))
    if ends.size > MAX_CURVE_POINTS:
        ends = np.unique(ends[np.linspace(0, ends.size - 1, MAX_CURVE_POINTS).astype(int)])
    n = c.size
    points: list[dict[str, float | None]] = [
        {"threshold": 1.0 + EPS, "review_rate": 1.0, "auto_accuracy": None, "n_auto": 0, "lower_bound": None}
    ]
    for i in ends:
        points.append(
            {
                "threshold": float(c[i]),
                "review_rate": 1.0 - (i + 1) / n,
                "auto_accuracy": float(ok[i] / (i + 1)),
                "n_auto": int(i + 1),
                "lower_bound": lower_bound(int(ok[i]), int(i + 1), bound_level),
            }
        )
    return points


def bound_level(choice: ThresholdChoice) -> float:
    """The level each family of tests ran at (``1 − delta / tests``), or the default without a guarantee."""
    g = choice.guarantee
    return 1.0 - g.delta / g.tests if g is not None else DEFAULT_CONFIDENCE_LEVEL


def plot_risk_coverage(curve: list[dict[str, Any]], choice: ThresholdChoice, path: Path) -> Path:
    import matplotlib  # heavy (0.3 s): only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [pt for pt in curve if pt["auto_accuracy"] is not None]
    x = [100 * pt["review_rate"] for pt in pts]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(x, [100 * pt["auto_accuracy"] for pt in pts], lw=1.5, label="accuracy of the rest")
    bounds = [100 * (pt.get("lower_bound") or 0.0) for pt in pts]
    level = 100 * bound_level(choice)
    ax.plot(x, bounds, lw=1.2, ls="--", color="tab:green", label=f"exact lower bound ({level:.1f}%)")
    ax.axhline(100 * choice.target, color="tab:red", ls=":", lw=1, label=f"target {100 * choice.target:.2f}%")
    g = choice.guarantee
    reaching = [pt for pt in pts if pt["auto_accuracy"] >= choice.target]
    if g is not None and reaching:  # where a point estimate on these pages would have stopped
        best = min(reaching, key=lambda pt: pt["review_rate"])
        ax.plot([100 * best["review_rate"]], [100 * best["auto_accuracy"]], "o", mfc="none", color="grey",
                label="point estimate (no guarantee)")  # fmt: skip
    if choice.auto_accuracy is not None:
        label = "chosen (point estimate)" if g is None else "chosen (guaranteed)"
        ax.plot([100 * choice.review_rate], [100 * choice.auto_accuracy], "o", color="tab:red", label=label)
    if g is not None and g.lower_bound is not None:
        ax.plot([100 * choice.review_rate], [100 * g.lower_bound], "v", color="tab:green", label="its bound")
    ax.set_xlabel("pages sent to review (%)")
    ax.set_ylabel("accuracy of automatically routed pages (%)")
    how = "point estimate" if g is None else f"{100 * g.confidence_level:.0f}% confidence"
    ax.set_title(f"risk-coverage: {100 * choice.review_rate:.2f}% review at the target ({how})", fontsize=10)
    lows = [100 * pt["auto_accuracy"] for pt in pts]
    ax.set_ylim(max(min(lows, default=90.0), 100 * choice.target - 5) - 0.2, 100.1)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def choose_and_report(
    probs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    target: float,
    report_dir: Path,
    min_class_pages: int | None = None,
    variant: Variant = "fp32",
    confidence_level: float | None = DEFAULT_CONFIDENCE_LEVEL,
) -> ThresholdChoice:
    """:func:`choose_thresholds`, then ``risk_coverage.json`` and ``.png`` (``.int8.`` ones for INT8)."""
    choice = choose_thresholds(probs, labels, class_names, target, min_class_pages, confidence_level)
    curve = risk_coverage_curve(probs, labels, bound_level(choice))
    report_dir.mkdir(parents=True, exist_ok=True)
    payload = {"chosen": {**choice.metrics(), "thresholds": choice.thresholds.model_dump()}, "curve": curve}
    json_path, png_path = report_paths(report_dir, variant)
    write_text_atomic(json_path, json.dumps(payload, indent=2) + "\n")
    plot_risk_coverage(curve, choice, png_path)
    return choice


def report_paths(report_dir: Path, variant: Variant = "fp32") -> tuple[Path, Path]:
    if variant == "fp32":
        return report_dir / RISK_COVERAGE_JSON, report_dir / RISK_COVERAGE_PNG
    return report_dir / RISK_COVERAGE_JSON.replace(
        ".json", ".int8.json"
    ), report_dir / RISK_COVERAGE_PNG.replace(".png", ".int8.png")
