"""Review thresholds chosen for a target accuracy of the automatically routed pages.

TensorFlow-free. The decision rule (the worker's own code, ``worker.decide.auto_mask``) on calibrated
probabilities: a page is routed automatically when

    confidence >= per_class.get(predicted class, confidence threshold)  and  top1 - top2 >= margin

and goes to review otherwise. Given validation probabilities (after temperature) and labels,
:func:`choose_thresholds` picks the thresholds that send the FEWEST validation pages to review under
one of two rules:

- **With a guarantee** (``confidence_level``, the default 0.95): the accuracy of the pages routed
  automatically is at least ``target`` with probability at least ``confidence_level`` over the draw of
  the validation pages (:mod:`trainer.guarantee`: Learn then Test, fixed-sequence exact binomial tests
  over thresholds fixed in advance). Margins come from a list fixed in advance (``margins``, by
  default 0 alone; two classes: always 0); each margin and each group of pages below is one family of
  tests, and ``delta = 1 − confidence_level`` is shared among them equally (Bonferroni), so the
  promise holds for every group at once.
- **Point estimate** (``confidence_level=None``): the routed validation pages themselves reach the
  target. Each candidate margin (every margin seen on validation, or 400 quantiles of them) is tried
  with every confidence threshold (a threshold equal to a page's confidence keeps that page; the
  smallest feasible one wins). Stored thresholds sit a hair (≤ 1e-6) below the chosen page's value, so
  float rounding on a worker cannot flip that page. This is no promise about new pages.

In both, the margin with the most pages routed wins (ties: the smaller margin); with two classes the
margin is ``2·confidence − 1`` and adds nothing. **Per class**: each class predicted on at least
``min_class_pages`` validation pages (by default: point estimate ``max(50, ceil(1 / (1 − target)))``;
with a guarantee, none) gets its own threshold, meeting the target on the pages predicted as that
class; the others share the global ``confidence`` threshold, chosen on their pages pooled.
When every class has its own, ``confidence`` is for readers that ignore ``per_class``: the all-pages
point estimate, or with a guarantee the strictest class threshold (outside the promise). A group for
which no threshold meets the target gets :data:`schema.manifest.REVIEW_ALL`: all its pages are reviewed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schema.errors import DocsortError
from schema.logs import get_logger
from schema.manifest import REVIEW_ALL, Guarantee, Thresholds
from trainer.guarantee import DEFAULT_CONFIDENCE_LEVEL, METHOD, fewest_items, guaranteed_threshold
from worker.decide import Policy, auto_mask, top2

log = get_logger(__name__)

MAX_MARGIN_CANDIDATES = 400
NEVER = 2**62  # a page count no class reaches
EPS = 1e-6
# With a guarantee, candidate margins are fixed in advance and each costs a share of delta: by default
# 0 alone (a margin adds nothing above confidence 0.75, since margin >= 2·confidence − 1).
GUARANTEED_MARGINS: tuple[float, ...] = (0.0,)


class ThresholdError(DocsortError):
    """Thresholds cannot be chosen: bad target, empty or inconsistent validation scores."""


@dataclass(frozen=True)
class Cut:
    """The chosen confidence cut of one group of pages (None: not one page can be routed)."""

    threshold: float | None
    n_auto: int
    n_correct: int
    lower_bound: float | None = None  # with a guarantee: the exact bound of the routed pages' accuracy


CutRule = Callable[[np.ndarray, np.ndarray], Cut]


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

    @property
    def guarantee(self) -> Guarantee | None:
        return self.thresholds.guarantee

    def metrics(self) -> dict[str, Any]:
        g = self.guarantee
        return {
            "target_auto_accuracy": self.target,
            "review_rate": self.review_rate,
            "auto_accuracy": self.auto_accuracy,
            "target_met": self.met,
            "confidence_level": g.confidence_level if g else None,
            "auto_accuracy_lower_bound": g.lower_bound if g else None,
            "method": g.method if g else "point estimate",
            "n_val": self.n,
            "n_auto": self.n_auto,
            "min_class_pages": self.min_class_pages if self.min_class_pages < NEVER else None,
            "per_class_thresholds": self.per_class,
        }


def default_min_class_pages(target: float, confidence_level: float | None = None) -> int:
    """Pages a class must be predicted on for its own threshold, when not told.

    Point estimate: ``max(50, ceil(1 / (1 − target)))``, the fewest on which one error still leaves the
    target reachable. With a guarantee: none gets its own (one threshold for all pages), because every
    group must then show the target on its own pages, and the classes left pooled are often too few
    to show it at all; ask for per-class thresholds with ``min_class_pages``.
    """
    if confidence_level is not None:
        return NEVER
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
        "n_auto_correct": int(correct[auto].sum()),
    }


def best_cut(conf: np.ndarray, correct: np.ndarray, target: float) -> Cut:
    """Point estimate: the smallest threshold whose routed pages (conf >= threshold) meet ``target``."""
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


def certified_cut(target: float, delta: float) -> CutRule:
    """With a guarantee: the loosest threshold that passes the fixed-sequence tests at level ``delta``."""

    def cut(conf: np.ndarray, correct: np.ndarray) -> Cut:
        found = guaranteed_threshold(conf, correct, target, delta)
        return Cut(found.threshold, found.n_auto, found.n_correct, found.lower_bound)

    return cut


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
    global_cut: Cut | None  # None: every class has its own and no pooled cut was made
    class_cuts: dict[int, Cut]
    n_auto: int


@dataclass(frozen=True)
class _Pages:
    pred: np.ndarray
    conf: np.ndarray
    margin: np.ndarray
    correct: np.ndarray
    own: list[int]
    n_classes: int


def _plan_for_margin(m: float, pages: _Pages, cut: CutRule, pool_all: CutRule | None) -> _Plan:
    """Cuts per class (``own``) and for the other classes pooled, at margin ``m``.

    When every class has its own, ``pool_all`` (if given) cuts all pages pooled, for readers of
    ``confidence`` only; it routes nothing of its own.
    """
    pred, conf, correct = pages.pred, pages.conf, pages.correct
    keep = pages.margin >= m
    class_cuts = {c: cut(conf[keep & (pred == c)], correct[keep & (pred == c)]) for c in pages.own}
    n_auto = sum(c.n_auto for c in class_cuts.values())
    global_cut = None
    if len(pages.own) < pages.n_classes:  # the classes without their own threshold share the global one
        rest = keep & ~np.isin(pred, pages.own)
        global_cut = cut(conf[rest], correct[rest])
        n_auto += global_cut.n_auto
    elif pool_all is not None:
        global_cut = pool_all(conf[keep], correct[keep])
    return _Plan(m, global_cut, class_cuts, n_auto)


def _check(probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str], target: float) -> None:
    if not 0.0 < target <= 1.0:
        raise ThresholdError(f"target accuracy must lie in (0, 1], got {target}")
    n, k = probs.shape if probs.ndim == 2 else (0, 0)
    if n == 0 or k != len(class_names) or labels.shape != (n,):
        raise ThresholdError(
            f"probabilities {probs.shape} and labels {labels.shape} do not fit {len(class_names)} classes"
        )


def choose_thresholds(
    probs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    target: float = 0.995,
    min_class_pages: int | None = None,
    confidence_level: float | None = DEFAULT_CONFIDENCE_LEVEL,
    margins: Sequence[float] = GUARANTEED_MARGINS,
) -> ThresholdChoice:
    """Thresholds that route the most validation pages while the routed ones meet ``target``: with
    probability ``confidence_level`` on new pages, or (``None``) on these pages themselves.

    ``margins``: the candidate margins tried with a guarantee (two classes: 0 only).
    """
    p, lab = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    _check(p, lab, class_names, target)
    if confidence_level is not None and not 0.0 < confidence_level < 1.0:
        raise ThresholdError(f"confidence level must lie in (0, 1), got {confidence_level}")
    k = len(class_names)
    minimum = (
        default_min_class_pages(target, confidence_level) if min_class_pages is None else min_class_pages
    )
    pred, conf, margin = top2(p)
    counts = np.bincount(pred, minlength=k)
    own = [c for c in range(k) if counts[c] >= minimum]
    pages = _Pages(pred, conf, margin, pred == lab, own, k)
    if confidence_level is None:
        point: CutRule = lambda c, ok: best_cut(c, ok, target)  # noqa: E731
        plans = [_plan_for_margin(float(m), pages, point, point) for m in margin_candidates(margin)]
    else:
        tried = sorted(set(margins)) if k > 2 else [0.0]
        tests = len(tried) * (len(own) + (len(own) < k))
        rule = certified_cut(target, (1.0 - confidence_level) / tests)
        plans = [_plan_for_margin(m, pages, rule, None) for m in tried]
    best = max(plans, key=lambda plan: (plan.n_auto, -plan.margin))
    thresholds = _thresholds(best, class_names, target, margin if confidence_level is None else None)
    result = decision_metrics(p, lab, thresholds, class_names)
    acc = result["auto_accuracy"]
    if confidence_level is None:
        met = acc is None or acc >= target - 1e-12
    else:
        guarantee = _guarantee(best, target, confidence_level, result, tests)
        thresholds = thresholds.model_copy(update={"guarantee": guarantee})
        met = result["n_auto"] > 0  # what is routed carries the guarantee; nothing routed: all reviewed
    choice = ThresholdChoice(
        thresholds=thresholds,
        target=target,
        n=result["n"],
        n_auto=result["n_auto"],
        auto_accuracy=acc,
        met=met,
        min_class_pages=minimum,
        per_class=_per_class_detail(p, lab, thresholds, class_names, counts, best),
    )
    log.info("thresholds chosen", target=target, review_rate=choice.review_rate, auto_accuracy=acc)
    return choice


def _thresholds(
    plan: _Plan, class_names: Sequence[str], target: float, seen_margins: np.ndarray | None
) -> Thresholds:
    """The plan as stored; ``seen_margins`` (point estimate) lowers the margin a hair below a page."""
    per_class = {class_names[c]: _stored(cut) for c, cut in plan.class_cuts.items()}
    # Every class with its own, under a guarantee: the strictest, for readers that ignore per_class.
    confidence = max(per_class.values()) if plan.global_cut is None else _stored(plan.global_cut)
    margin = plan.margin
    if seen_margins is not None and margin > 0:
        margin = stored_margin(margin, seen_margins)
    return Thresholds(confidence=confidence, margin=margin, per_class=per_class, target_auto_accuracy=target)


def _stored(cut: Cut) -> float:
    return REVIEW_ALL if cut.threshold is None else min(cut.threshold, 1.0)


def _guarantee(plan: _Plan, target: float, level: float, result: dict[str, Any], tests: int) -> Guarantee:
    cuts = [*plan.class_cuts.values(), *([plan.global_cut] if plan.global_cut is not None else [])]
    bounds = [c.lower_bound for c in cuts if c.lower_bound is not None and c.threshold is not None]
    return Guarantee(
        method=METHOD + (f"; delta shared by {tests} families (Bonferroni)" if tests > 1 else ""),
        target=target,
        confidence_level=level,
        lower_bound=min(bounds) if bounds else None,
        n_calibration=result["n"],
        n_auto=result["n_auto"],
        tests=tests,
    )


def _per_class_detail(
    probs: np.ndarray,
    labels: np.ndarray,
    thresholds: Thresholds,
    class_names: Sequence[str],
    counts: np.ndarray,
    plan: _Plan,
) -> dict[str, dict[str, Any]]:
    pred = probs.argmax(axis=1)
    auto = routed(probs, thresholds, class_names)
    detail = {}
    for c, name in enumerate(class_names):
        mine = pred == c
        n_auto = int((auto & mine).sum())
        cut = plan.class_cuts.get(c, plan.global_cut)
        detail[name] = {
            "predicted_pages": int(counts[c]),
            "threshold": thresholds.per_class.get(name, thresholds.confidence),
            "source": "own" if c in plan.class_cuts else "global",
            "auto_pages": n_auto,
            "auto_accuracy": float((labels[auto & mine] == c).mean()) if n_auto else None,
            "group_lower_bound": cut.lower_bound if cut is not None else None,
        }
    return detail


def describe(
    target: float, review_rate: float, n: int, auto_accuracy: float | None, guarantee: Guarantee | None
) -> str:
    """One line for people: the review rate at the target and what stands behind it."""
    acc = "n/a" if auto_accuracy is None else f"{100 * auto_accuracy:.2f}%"
    head = f"target {100 * target:.2f}%"
    if guarantee is None:
        met = auto_accuracy is None or auto_accuracy >= target - 1e-12
        return (
            f"{head} (point estimate, no guarantee): review {100 * review_rate:.2f}% of {n} validation "
            f"pages, accuracy of the rest {acc}{'' if met else ' (TARGET NOT MET: everything reviewed)'}"
        )
    head += f" with {100 * guarantee.confidence_level:g}% confidence"
    if guarantee.n_auto == 0:
        fewest = fewest_items(target, guarantee.delta / guarantee.tests)
        needs = (
            "no finite sample shows 100%"
            if fewest is None
            else (f"it takes at least {fewest} pages all predicted right, more with any error")
        )
        return (
            f"{head}: NOT MET, every page goes to review: no threshold shows it on these {n} "
            f"validation pages ({needs})"
        )
    bound = "n/a" if guarantee.lower_bound is None else f"{100 * guarantee.lower_bound:.2f}%"
    return (
        f"{head}: review {100 * review_rate:.2f}% of {n} validation pages, accuracy of the rest {acc} "
        f"(exact lower bound {bound})"
    )
