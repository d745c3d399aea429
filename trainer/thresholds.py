"""Review thresholds chosen for a target accuracy of the automatically routed pages.

TensorFlow-free. The decision rule (the worker's own code, ``worker.decide.auto_mask``) on calibrated
probabilities: a page is routed automatically when

    confidence >= per_class.get(predicted class, confidence threshold)  and  top1 - top2 >= margin

and goes to review otherwise. Given validation probabilities (after temperature) and labels,
:func:`choose_thresholds` picks the thresholds that send the FEWEST validation pages to review while
the pages it routes automatically are at least ``target`` accurate:

- Each candidate margin ``m`` (every margin value seen on validation, or 400 quantiles of them) is
  tried; for each, every confidence threshold is found by scanning the pages sorted by confidence
  (a threshold equal to a page's confidence keeps that page; the smallest feasible one wins). The
  margin with the most pages routed wins; ties go to the smaller margin. With two classes the margin
  is ``2·confidence − 1``, so it never adds anything and comes out 0.
- **Per class** for each class predicted on at least ``min_class_pages`` validation pages (default
  ``max(50, ceil(1 / (1 − target)))``: 200 at 99.5%, the fewest pages on which one error still
  leaves the target reachable): its own threshold, meeting the target on the pages predicted as that
  class. The other classes share the global ``confidence`` threshold, chosen on their pages pooled.
  When every class has its own, ``confidence`` is the threshold that meets the target on all pages
  pooled (what a reader that ignores ``per_class`` should use). When no class has enough, it is global.
- Stored thresholds sit a hair (≤ 1e-6) below the chosen page's value, so float rounding on a worker
  cannot flip that page; the validation partition is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schema.errors import DocsortError
from schema.logs import get_logger
from schema.manifest import Thresholds
from worker.decide import Policy, auto_mask, top2

log = get_logger(__name__)

MAX_MARGIN_CANDIDATES = 400
EPS = 1e-6


class ThresholdError(DocsortError):
    """Thresholds cannot be chosen: bad target, empty or inconsistent validation scores."""


@dataclass(frozen=True)
class Cut:
    """The best confidence cut of one group of pages (None: not one page can be routed)."""

    threshold: float | None
    n_auto: int
    n_correct: int


@dataclass
class ThresholdChoice:
    thresholds: Thresholds
    target: float
    n: int
    n_auto: int
    auto_accuracy: float | None
    met: bool
    min_class_pages: int
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def review_rate(self) -> float:
        return 1.0 - self.n_auto / self.n if self.n else 0.0

    def metrics(self) -> dict[str, Any]:
        return {
            "target_auto_accuracy": self.target,
            "review_rate": self.review_rate,
            "auto_accuracy": self.auto_accuracy,
            "target_met": self.met,
            "n_val": self.n,
            "n_auto": self.n_auto,
            "min_class_pages": self.min_class_pages,
            "per_class_thresholds": self.per_class,
        }


def default_min_class_pages(target: float) -> int:
    return max(50, math.ceil(1.0 / max(1.0 - target, 1e-9) - 1e-9))


def routed(probs: np.ndarray, thresholds: Thresholds, class_names: Sequence[str]) -> np.ndarray:
    """True where the worker's rule (:func:`worker.decide.auto_mask`) routes the page automatically."""
    return auto_mask(probs, class_names, Policy.from_thresholds(thresholds))


def decision_metrics(
    probs: np.ndarray, labels: np.ndarray, thresholds: Thresholds, class_names: Sequence[str]
) -> dict[str, Any]:
    """``review_rate`` and ``auto_accuracy`` (None when nothing is routed) at given thresholds."""
    auto = routed(probs, thresholds, class_names)
    correct = np.asarray(probs).argmax(axis=1) == np.asarray(labels)
    n_auto = int(auto.sum())
    return {
        "review_rate": 1.0 - n_auto / len(auto) if len(auto) else 0.0,
        "auto_accuracy": float(correct[auto].mean()) if n_auto else None,
        "n": len(auto),
        "n_auto": n_auto,
    }


def best_cut(conf: np.ndarray, correct: np.ndarray, target: float) -> Cut:
    """The smallest confidence threshold whose routed pages (conf >= threshold) meet ``target``."""
    if conf.size == 0:
        return Cut(None, 0, 0)
    order = np.argsort(-conf, kind="stable")
    c, ok = conf[order], correct[order].astype(np.int64)
    n_cum, ok_cum = np.arange(1, c.size + 1), np.cumsum(ok)
    group_end = np.append(c[1:] != c[:-1], True)  # a cut can only fall between distinct values
    feasible = group_end & (ok_cum >= target * n_cum - 1e-9)
    if not feasible.any():
        return Cut(None, 0, 0)
    i = int(np.flatnonzero(feasible)[-1])
    below = c[i + 1] if i + 1 < c.size else -np.inf
    threshold = float(c[i] - min(EPS, (c[i] - below) / 2))
    return Cut(max(threshold, 0.0), int(n_cum[i]), int(ok_cum[i]))


def margin_candidates(margin: np.ndarray) -> np.ndarray:
    values = np.unique(np.append(margin, 0.0))
    if values.size > MAX_MARGIN_CANDIDATES:
        values = np.unique(np.append(np.quantile(margin, np.linspace(0, 1, MAX_MARGIN_CANDIDATES)), 0.0))
    return values


def stored_margin(m: float, margin: np.ndarray) -> float:
    """``m`` lowered a hair, never past the next smaller margin seen (the partition stays the same)."""
    below = margin[margin < m]
    gap = m - float(below.max()) if below.size else EPS * 2
    return max(0.0, m - min(EPS, gap / 2))


@dataclass(frozen=True)
class _Plan:
    margin: float
    global_cut: Cut
    class_cuts: dict[int, Cut]
    n_auto: int


def _plan_for_margin(
    m: float,
    pred: np.ndarray,
    conf: np.ndarray,
    margin: np.ndarray,
    correct: np.ndarray,
    own: list[int],
    n_classes: int,
    target: float,
) -> _Plan:
    keep = margin >= m
    class_cuts = {c: best_cut(conf[keep & (pred == c)], correct[keep & (pred == c)], target) for c in own}
    n_auto = sum(cut.n_auto for cut in class_cuts.values())
    if len(own) < n_classes:  # the classes without their own threshold share the global one
        rest = keep & ~np.isin(pred, own)
        global_cut = best_cut(conf[rest], correct[rest], target)
        n_auto += global_cut.n_auto
    else:  # every class has its own: the global value is the all-pages one, for readers of `confidence` only
        global_cut = best_cut(conf[keep], correct[keep], target)
    return _Plan(m, global_cut, class_cuts, n_auto)


def choose_thresholds(
    probs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    target: float = 0.995,
    min_class_pages: int | None = None,
) -> ThresholdChoice:
    """Thresholds that route the most validation pages while the routed ones meet ``target``."""
    if not 0.0 < target <= 1.0:
        raise ThresholdError(f"target accuracy must lie in (0, 1], got {target}")
    p = np.asarray(probs, dtype=np.float64)
    lab = np.asarray(labels)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] != len(class_names) or lab.shape != (p.shape[0],):
        raise ThresholdError(
            f"probabilities {p.shape} and labels {lab.shape} do not fit {len(class_names)} classes"
        )
    minimum = default_min_class_pages(target) if min_class_pages is None else int(min_class_pages)
    pred, conf, margin = top2(p)
    correct = pred == lab
    counts = np.bincount(pred, minlength=len(class_names))
    own = [c for c in range(len(class_names)) if counts[c] >= minimum]
    plans = [
        _plan_for_margin(float(m), pred, conf, margin, correct, own, len(class_names), target)
        for m in margin_candidates(margin)
    ]
    best = max(plans, key=lambda plan: (plan.n_auto, -plan.margin))
    thresholds = Thresholds(
        confidence=_stored(best.global_cut),
        margin=stored_margin(best.margin, margin) if best.margin > 0 else 0.0,
        per_class={class_names[c]: _stored(cut) for c, cut in best.class_cuts.items()},
        target_auto_accuracy=target,
    )
    result = decision_metrics(p, lab, thresholds, class_names)
    acc = result["auto_accuracy"]
    choice = ThresholdChoice(
        thresholds=thresholds,
        target=target,
        n=result["n"],
        n_auto=result["n_auto"],
        auto_accuracy=acc,
        met=acc is None or acc >= target - 1e-12,
        min_class_pages=minimum,
        per_class=_per_class_detail(p, lab, thresholds, class_names, counts, own),
    )
    log.info("thresholds chosen", target=target, review_rate=choice.review_rate, auto_accuracy=acc)
    return choice


def _stored(cut: Cut) -> float:
    return 1.0 if cut.threshold is None else min(cut.threshold, 1.0)


def _per_class_detail(
    probs: np.ndarray,
    labels: np.ndarray,
    thresholds: Thresholds,
    class_names: Sequence[str],
    counts: np.ndarray,
    own: list[int],
) -> dict[str, dict[str, Any]]:
    pred = probs.argmax(axis=1)
    auto = routed(probs, thresholds, class_names)
    detail = {}
    for c, name in enumerate(class_names):
        mine = pred == c
        n_auto = int((auto & mine).sum())
        detail[name] = {
            "predicted_pages": int(counts[c]),
            "threshold": thresholds.per_class.get(name, thresholds.confidence),
            "source": "own" if c in own else "global",
            "auto_pages": n_auto,
            "auto_accuracy": float((labels[auto & mine] == c).mean()) if n_auto else None,
        }
    return detail
