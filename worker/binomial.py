"""Exact binomial confidence bounds of a proportion (Clopper–Pearson, through ``scipy.stats.binomtest``).

One implementation serves every place docsort states an accuracy with its uncertainty: the bound the
trainer's thresholds are certified with (:mod:`trainer.guarantee`), and the live accuracy of
automatically routed documents measured from operators' audit answers (:mod:`worker.live_accuracy`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """``k`` of ``n`` with the exact two-sided interval at ``level``; bounds None when ``n`` is 0."""

    k: int
    n: int
    level: float
    low: float | None
    high: float | None

    @property
    def estimate(self) -> float | None:
        return self.k / self.n if self.n else None


def lower_bound(n_correct: int, n: int, confidence_level: float) -> float | None:
    """Exact one-sided (Clopper–Pearson) lower confidence bound of a proportion; None when n is 0."""
    if n == 0:
        return None
    from scipy.stats import binomtest  # heavy (0.9 s): every docsort command imports this module's users

    test = binomtest(int(n_correct), int(n), alternative="greater")
    return float(test.proportion_ci(confidence_level=confidence_level, method="exact").low)


def interval(k: int, n: int, level: float = 0.95) -> Interval:
    """Exact two-sided (Clopper–Pearson) interval of ``k`` successes in ``n`` at ``level``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    if n == 0:
        return Interval(0, 0, level, None, None)
    from scipy.stats import binomtest  # heavy: see lower_bound

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return Interval(int(k), int(n), level, float(ci.low), float(ci.high))


def two_sided_p(k: int, n: int, p: float) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` trials if the rate were ``p``; 1 when n is 0."""
    if n == 0:
        return 1.0
    from scipy.stats import binomtest  # heavy: see lower_bound

    return float(binomtest(int(k), int(n), min(max(p, 0.0), 1.0)).pvalue)
