"""Thresholds for a target accuracy, the risk–coverage report and retargeting a version folder."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from docsort.cli import app
from schema.enums import DecisionKind
from schema.manifest import load_manifest, sha256_file
from tests.support.tiny_model import make_tiny_model
from trainer.calibration import CalibrationError
from trainer.confidence import finalize_confidence, retarget
from trainer.risk_coverage import choose_and_report
from trainer.thresholds import ThresholdError, choose_thresholds, default_min_class_pages, routed
from worker.decide import Policy, decide, top2
from worker.inference import softmax


def noisy_scores(n: int, k: int, seed: int, skill: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(0.0, 1.0, (n, k))
    logits[np.arange(n), labels] += rng.normal(skill, 1.2, n)
    return softmax(logits), labels


def brute_force_most_routed(probs: np.ndarray, labels: np.ndarray, target: float) -> int:
    """Most pages routable by any one global (confidence, margin) pair whose routed pages meet ``target``."""
    pred, conf, margin = top2(probs)
    correct = pred == labels
    best = 0
    for t, m in product(np.unique(conf), np.append(np.unique(margin), 0.0)):
        auto = (conf >= t) & (margin >= m)
        if auto.any() and correct[auto].mean() >= target:
            best = max(best, int(auto.sum()))
    return best


def test_global_threshold_meets_target_and_is_the_smallest_that_does() -> None:
    probs, labels = noisy_scores(240, 2, seed=11)
    target = 0.97
    choice = choose_thresholds(
        probs, labels, ["a", "b"], target, min_class_pages=10_000, confidence_level=None
    )
    assert choice.thresholds.per_class == {}
    _, conf, _ = top2(probs)
    correct = probs.argmax(axis=1) == labels
    auto = routed(probs, choice.thresholds, ["a", "b"])
    assert correct[auto].mean() >= target
    feasible = [t for t in np.unique(conf) if correct[conf >= t].mean() >= target]
    smallest = min(feasible)
    assert np.array_equal(auto, conf >= smallest)  # same pages as the smallest feasible threshold
    assert smallest - 1e-6 <= choice.thresholds.confidence <= smallest
    assert choice.thresholds.margin == 0.0  # two classes: the margin adds nothing


def test_margin_and_threshold_route_as_many_pages_as_brute_force() -> None:
    probs, labels = noisy_scores(130, 3, seed=12, skill=2.5)
    choice = choose_thresholds(
        probs, labels, ["a", "b", "c"], 0.98, min_class_pages=10_000, confidence_level=None
    )
    assert choice.met and choice.n_auto == brute_force_most_routed(probs, labels, 0.98)
    assert choice.thresholds.per_class == {} and choice.thresholds.margin > 0  # three classes: margin helps
    # At the chosen margin, the confidence threshold is the smallest that meets the target.
    pred, conf, margin = top2(probs)
    passing = margin >= choice.thresholds.margin
    correct = pred == labels
    feasible = [t for t in np.unique(conf[passing]) if correct[passing & (conf >= t)].mean() >= 0.98]
    auto = routed(probs, choice.thresholds, ["a", "b", "c"])
    assert np.array_equal(auto, passing & (conf >= min(feasible)))


def test_per_class_thresholds_meet_target_within_each_class() -> None:
    rng = np.random.default_rng(13)
    probs_a, labels_a = noisy_scores(400, 2, seed=14, skill=5.0)  # an easy class...
    probs_b, labels_b = noisy_scores(400, 2, seed=15, skill=1.0)  # ...and a hard one
    keep_a = probs_a.argmax(axis=1) == 0
    keep_b = probs_b.argmax(axis=1) == 1
    probs = np.vstack([probs_a[keep_a], probs_b[keep_b]])
    labels = np.concatenate([labels_a[keep_a], labels_b[keep_b]])
    order = rng.permutation(len(labels))
    probs, labels = probs[order], labels[order]
    choice = choose_thresholds(probs, labels, ["a", "b"], 0.99, min_class_pages=50, confidence_level=None)
    assert set(choice.thresholds.per_class) == {"a", "b"}
    assert choice.thresholds.per_class["a"] < choice.thresholds.per_class["b"]
    pred, conf, _ = top2(probs)
    for c, name in enumerate(["a", "b"]):
        mine = pred == c
        routed = mine & (conf >= choice.thresholds.per_class[name])
        assert (labels[routed] == c).mean() >= 0.99
        smallest = min(t for t in np.unique(conf[mine]) if (labels[mine & (conf >= t)] == c).mean() >= 0.99)
        assert np.array_equal(routed, mine & (conf >= smallest))
    assert choice.per_class["a"]["source"] == "own"


def test_class_with_few_pages_falls_back_to_global_threshold() -> None:
    probs, labels = noisy_scores(600, 3, seed=16, skill=3.0)
    rare = probs.argmax(axis=1) == 2
    drop = np.flatnonzero(rare)[12:]  # class c keeps only 12 predicted pages
    probs, labels = np.delete(probs, drop, axis=0), np.delete(labels, drop)
    choice = choose_thresholds(
        probs, labels, ["a", "b", "c"], 0.99, min_class_pages=50, confidence_level=None
    )
    assert set(choice.thresholds.per_class) == {"a", "b"}
    assert choice.per_class["c"]["source"] == "global"
    assert choice.per_class["c"]["threshold"] == choice.thresholds.confidence
    assert choice.met


def test_unreachable_target_sends_every_page_to_review() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    labels = np.array([1, 0, 0])  # the most confident page is wrong
    choice = choose_thresholds(probs, labels, ["a", "b"], 0.995)
    assert choice.n_auto == 0 and choice.review_rate == 1.0


def test_worker_decision_routes_exactly_the_pages_chosen_for_auto() -> None:
    probs, labels = noisy_scores(500, 3, seed=17)
    names = ["a", "b", "c"]
    choice = choose_thresholds(probs, labels, names, 0.98, min_class_pages=100, confidence_level=None)
    policy = Policy.from_thresholds(choice.thresholds)
    worker_auto = np.array([decide(row, names, policy).kind == DecisionKind.auto for row in probs])
    assert np.array_equal(worker_auto, routed(probs, choice.thresholds, names))


def test_risk_coverage_report_holds_curve_and_chosen_point(tmp_path: Path) -> None:
    probs, labels = noisy_scores(300, 2, seed=18)
    choice = choose_and_report(probs, labels, ["a", "b"], 0.97, tmp_path)
    data = json.loads((tmp_path / "risk_coverage.json").read_text())
    assert data["chosen"]["review_rate"] == pytest.approx(choice.review_rate)
    rates = [pt["review_rate"] for pt in data["curve"]]
    assert rates[0] == 1.0 and rates[-1] == 0.0 and rates == sorted(rates, reverse=True)
    assert data["curve"][-1]["auto_accuracy"] == pytest.approx((probs.argmax(axis=1) == labels).mean())
    assert (tmp_path / "risk_coverage.png").stat().st_size > 5000


def test_retarget_changes_thresholds_and_not_the_model_file(tmp_path: Path) -> None:
    version_dir = make_tiny_model(tmp_path, confidence=0.9)
    probs, labels = noisy_scores(800, 2, seed=19, skill=3.0)
    finalize_confidence(np.log(probs), labels, ["dark", "light"], version_dir / "report", target=0.995)
    model = version_dir / "model.onnx"
    before_sha, before_mtime = sha256_file(model), model.stat().st_mtime_ns
    loose = retarget(version_dir, 0.97)
    manifest = load_manifest(version_dir)  # verifies the model's sha256 against the manifest
    assert manifest.thresholds == loose.thresholds and manifest.thresholds.target_auto_accuracy == 0.97
    strict = retarget(version_dir, 0.999)
    manifest = load_manifest(version_dir)
    assert strict.thresholds.confidence > loose.thresholds.confidence
    assert manifest.thresholds.confidence == strict.thresholds.confidence
    assert manifest.metrics["confidence"]["review_rate"] == pytest.approx(strict.review_rate)
    assert strict.review_rate > loose.review_rate
    assert sha256_file(model) == before_sha and model.stat().st_mtime_ns == before_mtime


def test_retarget_without_stored_scores_names_the_missing_file(tmp_path: Path) -> None:
    version_dir = make_tiny_model(tmp_path)
    before = (version_dir / "manifest.json").read_text()
    with pytest.raises(CalibrationError, match=r"confidence_scores\.npz"):
        retarget(version_dir, 0.99)
    assert (version_dir / "manifest.json").read_text() == before


def test_target_outside_zero_one_is_refused() -> None:
    probs, labels = noisy_scores(50, 2, seed=20)
    with pytest.raises(ThresholdError, match="target"):
        choose_thresholds(probs, labels, ["a", "b"], 1.5)
    with pytest.raises(ThresholdError, match="do not fit"):
        choose_thresholds(probs, labels, ["a", "b", "c"], 0.9)


def test_default_minimum_pages_per_class_follows_the_target() -> None:
    assert default_min_class_pages(0.995) == 200
    assert default_min_class_pages(0.99) == 100
    assert default_min_class_pages(0.9) == 50


def test_models_retarget_command_prints_and_stores_new_thresholds(tmp_path: Path) -> None:
    version_dir = make_tiny_model(tmp_path)
    probs, labels = noisy_scores(500, 2, seed=21, skill=3.0)
    finalize_confidence(np.log(probs), labels, ["dark", "light"], version_dir / "report", target=0.995)
    result = CliRunner().invoke(
        app,
        ["models", "retarget", str(version_dir), "--auto-accuracy", "0.98", "--refit-temperature", "--json"],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    manifest = load_manifest(version_dir)
    assert printed["thresholds"] == manifest.thresholds.model_dump()
    assert manifest.thresholds.target_auto_accuracy == 0.98
    assert "target 98.00% with 95% confidence: review" in result.output
    assert manifest.temperature == pytest.approx(manifest.metrics["confidence"]["calibration"]["temperature"])


def test_retarget_reads_the_trainers_val_scores_when_calibration_stored_none(tmp_path: Path) -> None:
    version_dir = make_tiny_model(tmp_path)
    probs, labels = noisy_scores(400, 2, seed=22, skill=3.0)
    trainer_scores = {
        "class_names": ["dark", "light"],
        "labels": labels.tolist(),
        "probs": np.round(probs, 7).tolist(),
        "sources": [f"dark/{i}.png" for i in range(400)],
        "pages": [1] * 400,
    }
    (version_dir / "report" / "val_scores.json").write_text(json.dumps(trainer_scores))
    choice = retarget(version_dir, 0.98)
    expected = choose_thresholds(np.round(probs, 7), labels, ["dark", "light"], 0.98)
    assert choice.n_auto == expected.n_auto
    assert load_manifest(version_dir).thresholds.target_auto_accuracy == 0.98


def test_evaluate_reports_review_rate_and_auto_accuracy_at_the_model_thresholds(tmp_path: Path) -> None:
    from PIL import Image

    version_dir = make_tiny_model(tmp_path / "models", confidence=0.9)
    data = tmp_path / "data"
    for name, levels in (("dark", [0, 10, 20, 127]), ("light", [250, 240, 128, 230])):
        (data / name).mkdir(parents=True)
        for i, level in enumerate(levels):
            Image.new("RGB", (20, 20), (level,) * 3).save(data / name / f"{i}.png")
    result = CliRunner().invoke(app, ["evaluate", str(data), "--model", str(version_dir), "--json", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["n"] == 8 and report["n_auto"] == 6  # the two mid-grey pages go to review
    assert report["review_rate"] == pytest.approx(2 / 8)
    assert report["auto_accuracy"] == 1.0
    # exact one-sided bound of 6 right out of 6 at 95% (the manifest's thresholds carry no guarantee)
    assert report["confidence_level"] == 0.95
    assert report["auto_accuracy_lower_bound"] == pytest.approx(0.05 ** (1 / 6))
    assert "exact lower bound 60.70% (95% confidence)" in result.output
