"""Thresholds with a guarantee: the promise holds on held-out pages over many calibration/test splits,
and the edge cases say what they do (nothing certifiable, tiny samples, everything right)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from schema.enums import DecisionKind
from schema.manifest import REVIEW_ALL
from trainer.calibration import fit_temperature
from trainer.guarantee import fewest_items, guaranteed_threshold, lower_bound, threshold_grid
from trainer.thresholds import choose_thresholds, describe, routed
from worker.decide import Policy, decide
from worker.inference import softmax


def synthetic_population(n: int, seed: int, overconfidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Confidences with ``1 − confidence`` log-uniform in [1e-5, 0.5]; each item is right with probability
    ``1 − overconfidence·(1 − confidence)`` (1: calibrated; above 1: the model claims more than it has)."""
    rng = np.random.default_rng(seed)
    confidence = 1.0 - 10.0 ** rng.uniform(-5.0, math.log10(0.5), n)
    right = rng.random(n) < 1.0 - np.minimum(overconfidence * (1.0 - confidence), 1.0)
    return confidence, right


def held_out_misses(
    confidence: np.ndarray, right: np.ndarray, n_cal: int, target: float, delta: float, splits: int, seed: int
) -> tuple[int, int, int]:
    """Over random calibration/test splits: how often the held-out auto-routed accuracy falls below the
    target at the guaranteed threshold and at the point-estimate one, and how often nothing was routed."""
    rng = np.random.default_rng(seed)
    guaranteed = point = empty = 0
    for _ in range(splits):
        order = rng.permutation(confidence.size)
        cal, test = order[:n_cal], order[n_cal:]
        found = guaranteed_threshold(confidence[cal], right[cal], target, delta)
        if found.threshold is None:
            empty += 1
        else:
            routed_test = confidence[test] >= found.threshold
            guaranteed += int(right[test][routed_test].mean() < target)
        # the point estimate: the loosest grid threshold whose calibration pages reach the target
        grid = threshold_grid(target)
        ok = [t for t in grid if right[cal][confidence[cal] >= t].mean() >= target]
        if ok:
            estimate = min(ok)
            point += int(right[test][confidence[test] >= estimate].mean() < target)
    return guaranteed, point, empty


@pytest.mark.parametrize("overconfidence,delta", [(1.0, 0.1), (2.5, 0.1), (1.0, 0.05)])
def test_held_out_accuracy_meets_the_target_in_at_least_one_minus_delta_of_splits(
    overconfidence: float, delta: float
) -> None:
    """300 splits of 150,000 labelled items (1,500 to calibrate, the rest held out; the held-out
    accuracy is within ±0.1 point of the population's, so a miss is a miss of the threshold). Monte
    Carlo tolerance: three standard deviations of a binomial count, 3·sqrt(300·δ·(1 − δ))."""
    confidence, right = synthetic_population(150_000, seed=7, overconfidence=overconfidence)
    target, splits = 0.99, 300
    guaranteed, point, empty = held_out_misses(confidence, right, 1500, target, delta, splits, seed=11)
    tolerance = 3.0 * math.sqrt(splits * delta * (1.0 - delta))
    assert guaranteed <= splits * delta + tolerance, (guaranteed, point, empty)
    assert empty <= splits // 4  # the guarantee is not bought by routing nothing
    assert point > 3 * guaranteed + 20  # the point estimate misses far more often: the test can fail


def labelled_scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three-class class scores from a real, fitted model: logistic regression on Gaussian classes."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (3, 8)) * 0.7

    def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, m)
        return centres[y] + rng.normal(0.0, 1.0, (m, 8)), y

    x_train, y_train = draw(600)
    model = LogisticRegression(C=10.0, max_iter=500).fit(x_train, y_train)
    x, y = draw(n)
    return model.decision_function(x), y


def per_class_misses(logits: np.ndarray, labels: np.ndarray, level: float | None, splits: int) -> list[bool]:
    """For each split: does any predicted class miss the target on its held-out auto-routed pages?"""
    names, target = ["a", "b", "c"], 0.98
    rng = np.random.default_rng(5)
    missed = []
    for _ in range(splits):
        order = rng.permutation(labels.size)
        cal, test = order[:3000], order[3000:]
        temperature = fit_temperature(logits[cal], labels[cal])
        calibrated = softmax(logits[cal], temperature)
        choice = choose_thresholds(calibrated, labels[cal], names, target, 500, confidence_level=level)
        assert set(choice.thresholds.per_class) == set(names)
        probs = softmax(logits[test], temperature)
        auto, pred = routed(probs, choice.thresholds, names), probs.argmax(axis=1)
        right = pred == labels[test]
        missed.append(
            any(right[auto & (pred == c)].mean() < target for c in range(3) if (auto & (pred == c)).any())
        )
    return missed


def test_fitted_model_pages_meet_the_target_per_class_on_held_out_splits() -> None:
    """The page path as training runs it, on a real fitted model (92% accurate): temperature fitted on
    the calibration part of each split (3,000 pages), then one threshold per class (Bonferroni over the
    three); the promise is per class, checked on the 57,000 held-out pages of each predicted class.
    120 splits, δ = 0.1, tolerance three binomial standard deviations as above."""
    logits, labels = labelled_scores(60_000, seed=3)
    splits = 120
    guaranteed = sum(per_class_misses(logits, labels, 0.9, splits))
    assert guaranteed <= splits * 0.1 + 3.0 * math.sqrt(splits * 0.1 * 0.9)
    point = sum(per_class_misses(logits, labels, None, 30))  # slower: 400 margins are tried
    assert point > 15  # the per-class point estimate misses in most splits: the check can fail


def test_p_value_passes_exactly_when_the_exact_bound_reaches_the_target() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = int(rng.integers(1, 3000))
        k = int(m - rng.integers(0, max(1, m // 50)))
        target, delta = float(rng.uniform(0.9, 0.999)), float(rng.uniform(0.01, 0.2))
        passes = binom.sf(k - 1, m, target) <= delta
        bound = lower_bound(k, m, 1.0 - delta)
        assert bound is not None and passes == (bound >= target - 1e-12)
        assert bound == pytest.approx(binomtest(k, m).proportion_ci(1.0 - 2 * delta).low, rel=1e-9)


def test_grid_is_fixed_in_advance_from_the_target_down_to_zero() -> None:
    grid = threshold_grid(0.995)
    assert grid[0] == pytest.approx(0.995) and grid[-1] == 0.0
    assert np.all(np.diff(grid) < 0)
    assert np.array_equal(grid, threshold_grid(0.995))


def test_sequence_stops_at_the_first_threshold_that_fails() -> None:
    """700 sure pages, then 20 wrong ones, then 5,000 right ones: a looser threshold would pass again
    on the pooled pages, but the fixed sequence has stopped before the errors."""
    confidence = np.concatenate([np.full(700, 0.999), np.full(20, 0.9), np.full(5000, 0.8)])
    right = np.concatenate([np.ones(700), np.zeros(20), np.ones(5000)]).astype(bool)
    assert right[confidence >= 0.8].mean() > 0.995  # pooled, the loosest threshold looks fine
    found = guaranteed_threshold(confidence, right, 0.995, 0.05)
    assert found.threshold is not None and 0.9 < found.threshold <= 0.995
    assert (found.n_auto, found.n_correct) == (700, 700)
    assert found.lower_bound == pytest.approx(0.05 ** (1 / 700))  # Clopper–Pearson with no error


def test_no_threshold_reaches_the_target_and_every_page_goes_to_review() -> None:
    probs = np.tile([0.999999, 0.000001], (100, 1))  # 100 sure and right pages: 598 are needed for 99.5%
    labels = np.zeros(100, dtype=int)
    choice = choose_thresholds(probs, labels, ["a", "b"], 0.995, confidence_level=0.95)
    assert choice.n_auto == 0 and not choice.met and choice.review_rate == 1.0
    assert choice.thresholds.confidence == REVIEW_ALL
    g = choice.guarantee
    assert g is not None and (g.n_calibration, g.n_auto, g.lower_bound) == (100, 0, None)
    line = describe(choice.target, choice.review_rate, choice.n, choice.auto_accuracy, g)
    assert "NOT MET, every page goes to review" in line and f"at least {fewest_items(0.995, 0.05)}" in line
    certain = decide(np.array([1.0, 0.0]), ["a", "b"], Policy.from_thresholds(choice.thresholds))
    assert certain.kind == DecisionKind.review  # even a confidence of exactly 1 is reviewed


def test_tiny_samples_route_nothing() -> None:
    for n in (0, 1, 5):
        found = guaranteed_threshold(np.full(n, 0.9999), np.ones(n, dtype=bool), 0.9, 0.05)
        assert found.threshold is None and found.n == n and found.lower_bound is None and not found.met
    assert fewest_items(0.9, 0.05) == 29  # 0.9 ** 29 < 0.05 <= 0.9 ** 28


def test_all_right_routes_everything_with_the_bound_of_a_clean_sample() -> None:
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.995, 1.0, 1000)
    found = guaranteed_threshold(confidence, np.ones(1000, dtype=bool), 0.995, 0.05)
    assert found.threshold == 0.0 and found.n_auto == 1000
    assert found.lower_bound == pytest.approx(0.05 ** (1 / 1000))


def test_all_right_but_unsure_is_routed_once_the_temperature_is_fitted() -> None:
    """The strictest candidate is the target itself, right for calibrated confidences: an under-confident
    model gets nothing until its temperature is fitted, then everything."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 1000)
    logits = np.zeros((1000, 2))
    logits[np.arange(1000), labels] = rng.uniform(0.1, 3.0, 1000)  # right, but at most 95% sure
    raw = choose_thresholds(softmax(logits), labels, ["a", "b"], 0.995, confidence_level=0.95)
    assert raw.n_auto == 0
    temperature = fit_temperature(logits, labels)
    calibrated = softmax(logits, temperature)
    choice = choose_thresholds(calibrated, labels, ["a", "b"], 0.995, confidence_level=0.95)
    assert temperature < 0.1 and choice.n_auto == 1000 and choice.met


def test_classes_with_their_own_threshold_share_delta_and_each_meets_the_target() -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    labels = rng.integers(0, 2, n)
    sure = rng.uniform(0.0, 6.0, n)  # how sure the model is, and right 99% of the time or less
    right = rng.random(n) < 1.0 - 0.5 * np.exp(-sure)
    pred = np.where(right, labels, 1 - labels)
    p_pred = 1.0 / (1.0 + np.exp(-sure - 0.01))
    probs = np.where(pred[:, None] == np.arange(2), p_pred[:, None], 1.0 - p_pred[:, None])
    choice = choose_thresholds(probs, labels, ["a", "b"], 0.99, min_class_pages=1000, confidence_level=0.9)
    g = choice.guarantee
    assert g is not None and g.tests == 2 and set(choice.thresholds.per_class) == {"a", "b"}
    for detail in choice.per_class.values():
        assert detail["source"] == "own" and detail["group_lower_bound"] >= 0.99
        assert detail["auto_accuracy"] >= 0.99
    assert g.lower_bound is not None and g.lower_bound >= 0.99
    alone = choose_thresholds(probs, labels, ["a", "b"], 0.99, min_class_pages=10**9, confidence_level=0.9)
    assert alone.guarantee is not None and alone.guarantee.tests == 1  # one global group: no sharing


def test_a_target_of_one_is_never_met_and_says_why() -> None:
    probs, labels = np.tile([1.0 - 1e-9, 1e-9], (5000, 1)), np.zeros(5000, dtype=int)
    choice = choose_thresholds(probs, labels, ["a", "b"], 1.0, confidence_level=0.95)
    assert choice.n_auto == 0 and fewest_items(1.0, 0.05) is None
    line = describe(choice.target, choice.review_rate, choice.n, choice.auto_accuracy, choice.guarantee)
    assert "no finite sample shows 100%" in line


def test_with_a_guarantee_one_threshold_serves_all_classes_unless_asked() -> None:
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, 5000)
    probs = np.where(labels[:, None] == np.arange(2), 0.9999, 0.0001)
    choice = choose_thresholds(probs, labels, ["a", "b"], 0.99, confidence_level=0.95)
    assert choice.thresholds.per_class == {} and choice.metrics()["min_class_pages"] is None
    assert choice.n_auto == 5000
