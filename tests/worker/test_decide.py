from __future__ import annotations

import numpy as np
import pytest

from schema.enums import DecisionKind
from schema.manifest import Thresholds
from worker.decide import Policy, decide

NAMES = ["invoice", "letter", "form"]


def _policy(**kwargs: object) -> Policy:
    return Policy.from_thresholds(Thresholds(**kwargs))  # type: ignore[arg-type]


def test_confident_page_with_margin_is_auto() -> None:
    d = decide(np.array([0.95, 0.03, 0.02]), NAMES, _policy(confidence=0.9, margin=0.5))
    assert (d.kind, d.label) == (DecisionKind.auto, "invoice")
    assert d.margin == pytest.approx(0.92) and d.scores["letter"] == pytest.approx(0.03)


def test_low_confidence_goes_to_review_with_reason() -> None:
    d = decide(np.array([0.6, 0.3, 0.1]), NAMES, _policy(confidence=0.9))
    assert d.kind == DecisionKind.review and "below threshold 0.900" in d.reason


def test_small_margin_goes_to_review_even_when_confident() -> None:
    d = decide(np.array([0.5, 0.45, 0.05]), NAMES, _policy(confidence=0.4, margin=0.2))
    assert d.kind == DecisionKind.review and "margin" in d.reason


def test_per_class_threshold_applies_to_its_class() -> None:
    policy = _policy(confidence=0.9, per_class={"letter": 0.6})
    assert decide(np.array([0.1, 0.7, 0.2]), NAMES, policy).kind == DecisionKind.auto
    assert decide(np.array([0.7, 0.1, 0.2]), NAMES, policy).kind == DecisionKind.review


def test_settings_override_replaces_manifest_thresholds() -> None:
    policy = Policy.from_thresholds(Thresholds(confidence=0.99, per_class={"invoice": 0.99}), 0.5, 0.1)
    assert (policy.confidence, policy.margin, policy.per_class) == (0.5, 0.1, {})
    assert decide(np.array([0.6, 0.3, 0.1]), NAMES, policy).kind == DecisionKind.auto


def test_non_finite_scores_go_to_review() -> None:
    d = decide(np.array([np.nan, 0.5, 0.5]), NAMES, _policy(confidence=0.1))
    assert d.kind == DecisionKind.review and d.confidence == 0.0
    assert all(np.isfinite(v) for v in d.scores.values())


def test_score_count_must_match_classes() -> None:
    with pytest.raises(ValueError, match="2 scores for 3 classes"):
        decide(np.array([0.5, 0.5]), NAMES, _policy())
