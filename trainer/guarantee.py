"""A confidence threshold with a finite-sample guarantee on the accuracy of what it lets through.

Given the confidence of each calibration item (a page, or later a document) and whether the model was
right about it, :func:`guaranteed_threshold` returns the loosest threshold for which it can say: the
accuracy of the items routed automatically (``confidence >= threshold``) is at least ``target``, with
probability at least ``1 − delta`` over the draw of the calibration sample.

The procedure is Learn then Test (Angelopoulos, Bates, Candès, Jordan & Lei, 2021) with fixed-sequence
testing:

1. Candidate thresholds are fixed before any score is seen (:func:`threshold_grid`): from the target
   itself (the strictest a calibrated model needs: items it gives ``confidence >= target`` are on
   average at least ``target`` accurate) down to 0, evenly spaced in ``log(1 − threshold)``.
2. At each threshold ``λ`` the null hypothesis is "the accuracy of items with confidence >= λ is below
   ``target``". Given the number ``m`` of calibration items above ``λ``, those items are an i.i.d.
   sample of that population, so the number right is Binomial(m, accuracy) and the exact p-value is
   ``P(Binomial(m, target) >= right)`` (``scipy.stats.binom.sf``).
3. The thresholds are tested from strict to loose; each one whose p-value is at most ``delta`` is
   accepted, and the first that is not stops the sequence. Whatever the true accuracies, the chance
   that an accepted threshold does not meet the target is at most ``delta``: an error needs the first
   threshold that misses the target (a fixed one) to pass its own test.

The loosest accepted threshold is returned, with the exact one-sided (Clopper–Pearson) lower
confidence bound of the accuracy of the calibration items it routes (``scipy.stats.binomtest``); the
bound is at least ``target`` exactly when the test passes. When the first threshold already fails
(too few items, or too many errors among the most confident), nothing is accepted: every item goes
to review. The guarantee assumes the calibration items are drawn like the items the threshold will
meet, independently of how the scores were made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from worker.binomial import lower_bound

DEFAULT_CONFIDENCE_LEVEL = 0.95
STEPS_PER_DECADE = 100  # grid density; fixed-sequence testing pays nothing for more steps
METHOD = "learn-then-test: fixed-sequence binomial tests over thresholds from strict to loose"


@dataclass(frozen=True)
class Certified:
    """The outcome for one group of items; ``threshold`` None: none can be routed with the guarantee."""

    threshold: float | None
    n: int  # calibration items
    n_auto: int  # of which routed at the threshold
    n_correct: int  # of which right
    lower_bound: float | None  # exact lower bound (level 1 − delta) of the routed items' accuracy
    target: float
    delta: float

    @property
    def met(self) -> bool:
        return self.threshold is not None

    @property
    def accuracy(self) -> float | None:
        return self.n_correct / self.n_auto if self.n_auto else None


def check_level(target: float, delta: float) -> None:
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target accuracy must lie in (0, 1], got {target}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta (1 − confidence level) must lie in (0, 1), got {delta}")


def threshold_grid(target: float, steps_per_decade: int = STEPS_PER_DECADE) -> np.ndarray:
    """Candidate thresholds, strict to loose: ``1 − (1 − target)·10^(j / steps)`` while above 0, then 0."""
    start = max(1.0 - target, 1e-12)
    steps = math.ceil(steps_per_decade * math.log10(1.0 / start))
    grid = 1.0 - start * 10.0 ** (np.arange(steps) / steps_per_decade)
    return np.append(grid[grid > 0.0], 0.0)


def fixed_sequence_p_values(
    confidence: np.ndarray, correct: np.ndarray, target: float, grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items routed, items right and the p-value of "accuracy < target" at each threshold of ``grid``."""
    from scipy.stats import binom  # heavy (0.9 s): every docsort command imports this module's users

    order = np.argsort(-confidence, kind="stable")
    conf_desc = confidence[order]
    right_cum = np.concatenate([[0], np.cumsum(correct[order].astype(np.int64))])
    # items with confidence >= λ: the count of values >= λ in the descending list
    n_auto = np.searchsorted(-conf_desc, -grid, side="right")
    n_right = right_cum[n_auto]
    p_values = binom.sf(n_right - 1, n_auto, target)  # P(Binomial(m, target) >= right); 1 when m = 0
    return n_auto, n_right, p_values


def guaranteed_threshold(
    confidence: np.ndarray,
    correct: np.ndarray,
    target: float,
    delta: float = 1.0 - DEFAULT_CONFIDENCE_LEVEL,
    grid: np.ndarray | None = None,
) -> Certified:
    """The loosest threshold whose routed items are at least ``target`` accurate with probability
    at least ``1 − delta`` (see the module's docstring), and the exact lower bound it achieves."""
    check_level(target, delta)
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    ok = np.asarray(correct, dtype=bool).reshape(-1)
    if conf.shape != ok.shape:
        raise ValueError(f"{conf.size} confidences for {ok.size} correctness flags")
    if not np.isfinite(conf).all():
        raise ValueError("confidences hold NaN or infinite values")
    candidates = threshold_grid(target) if grid is None else np.asarray(grid, dtype=np.float64)
    n_auto, n_right, p_values = fixed_sequence_p_values(conf, ok, target, candidates)
    failed = np.flatnonzero(p_values > delta)
    accepted = failed[0] if failed.size else candidates.size  # tests pass up to the first failure
    if accepted == 0:
        return Certified(None, conf.size, 0, 0, None, target, delta)
    last = accepted - 1
    m, k = int(n_auto[last]), int(n_right[last])
    return Certified(float(candidates[last]), conf.size, m, k, lower_bound(k, m, 1.0 - delta), target, delta)


def fewest_items(target: float, delta: float) -> int | None:
    """The fewest calibration items that can meet ``target`` with the guarantee (all of them right);
    None for a target of 1, which no finite sample shows."""
    check_level(target, delta)
    if target >= 1.0:
        return None
    return math.ceil(math.log(delta) / math.log(target) - 1e-9)
