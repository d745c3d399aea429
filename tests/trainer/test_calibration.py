"""Temperature scaling, ECE and the report files (generated scores; no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer.calibration import (
    CalibrationError,
    as_logits,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    load_scores,
    nll,
)
from trainer.confidence import finalize_confidence
from worker.inference import apply_temperature, softmax


def calibrated_logits(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is calibrated by construction: labels are drawn from the softmax itself."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (n, k))
    logits[:, 0] += 1.5
    probs = softmax(logits)
    labels = np.array([rng.choice(k, p=row) for row in probs])
    return logits, labels


def test_calibration_lowers_ece_of_overconfident_model() -> None:
    logits, labels = calibrated_logits(4000, 3, seed=1)
    overconfident = logits * 3.0
    temperature, summary = calibrate(overconfident, labels)
    assert 2.5 < temperature < 3.6  # undoes the sharpening
    assert summary["ece_after"] < 0.5 * summary["ece_before"]
    assert summary["ece_after"] < 0.03
    assert summary["nll_after"] < summary["nll_before"]
    after = softmax(overconfident, temperature)
    assert np.array_equal(after.argmax(axis=1), overconfident.argmax(axis=1))  # labels never change


def test_fitted_temperature_is_the_nll_minimum() -> None:
    logits, labels = calibrated_logits(1500, 4, seed=2)
    logits = logits * 0.4  # under-confident: T < 1
    temperature = fit_temperature(logits, labels)
    assert temperature < 1.0
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 2000))
    best_on_grid = min(nll(logits, labels, t) for t in grid)
    assert nll(logits, labels, temperature) <= best_on_grid + 1e-9


def test_temperature_fitted_on_probabilities_equals_the_logit_fit() -> None:
    logits, labels = calibrated_logits(2000, 3, seed=3)
    logits = logits * 2.0
    from_logits = fit_temperature(as_logits(logits, "logits"), labels)
    from_probs = fit_temperature(as_logits(softmax(logits).astype(np.float32), "probs"), labels)
    assert from_probs == pytest.approx(from_logits, rel=1e-3)


def test_calibrated_probabilities_are_what_the_worker_computes() -> None:
    logits, _ = calibrated_logits(200, 3, seed=4)
    probs = softmax(logits * 8.0).astype(np.float32)  # some far below the 1e-12 floor
    for temperature in (0.7, 1.0, 2.5):
        fitted_view = softmax(as_logits(probs, "probs"), temperature)  # what the temperature is fitted on
        worker = apply_temperature(probs, temperature)  # what a worker computes from the graph's probs
        np.testing.assert_array_equal(fitted_view, worker)


def test_finalize_confidence_writes_report_and_reusable_scores(tmp_path: Path) -> None:
    logits, labels = calibrated_logits(600, 2, seed=5)
    report = tmp_path / "report"
    temperature, thresholds, metrics = finalize_confidence(
        logits * 2.5, labels, ["dark", "light"], report, target=0.95
    )
    saved = json.loads((report / "calibration.json").read_text())
    assert saved["temperature"] == pytest.approx(temperature)
    assert saved["ece_after"] < saved["ece_before"]
    for png in ("reliability.png", "risk_coverage.png"):
        with Image.open(report / png) as img:
            assert img.size[0] > 200
    stored_logits, stored_labels = load_scores(report, ["dark", "light"])
    assert np.array_equal(stored_labels, labels)
    assert stored_logits.shape == (600, 2)
    assert metrics["target_met"] and metrics["auto_accuracy"] >= 0.95
    assert thresholds.target_auto_accuracy == 0.95
    with pytest.raises(CalibrationError, match="classes"):
        load_scores(report, ["light", "dark"])


def test_ece_is_zero_for_exact_confidence_and_large_when_overconfident() -> None:
    labels = np.array([0] * 80 + [1] * 20)
    honest = np.tile([0.8, 0.2], (100, 1))
    assert expected_calibration_error(honest, labels) == pytest.approx(0.0, abs=1e-12)
    boastful = np.tile([0.99, 0.01], (100, 1))
    assert expected_calibration_error(boastful, labels) == pytest.approx(0.19, abs=1e-9)


def test_calibration_rejects_labels_out_of_range() -> None:
    with pytest.raises(CalibrationError, match=r"0\.\.1"):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(CalibrationError, match="probabilities"):
        as_logits(np.array([[2.0, -1.0]]), "probs")
