"""Decide: a page goes to automatic routing or to review, from its class scores and the thresholds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schema.enums import DecisionKind
from schema.manifest import Thresholds


@dataclass(frozen=True)
class Policy:
    """Thresholds in force: the manifest's, with the settings' overrides applied."""

    confidence: float
    margin: float
    per_class: dict[str, float]

    @classmethod
    def from_thresholds(
        cls, thresholds: Thresholds, confidence: float | None = None, margin: float | None = None
    ) -> Policy:
        # An explicit confidence override replaces per-class thresholds too: it is the operator's word.
        per_class = {} if confidence is not None else dict(thresholds.per_class)
        return cls(
            confidence=thresholds.confidence if confidence is None else confidence,
            margin=thresholds.margin if margin is None else margin,
            per_class=per_class,
        )

    def threshold_for(self, label: str) -> float:
        return self.per_class.get(label, self.confidence)


@dataclass(frozen=True)
class Decision:
    label: str
    confidence: float
    margin: float
    scores: dict[str, float]
    kind: DecisionKind  # auto or review
    reason: str


def decide(probs: np.ndarray, class_names: list[str], policy: Policy) -> Decision:
    """One page's decision from its probability vector."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if p.shape[0] != len(class_names):
        raise ValueError(f"{p.shape[0]} scores for {len(class_names)} classes")
    finite = bool(np.isfinite(p).all())
    p = np.nan_to_num(p, nan=0.0, posinf=1.0, neginf=0.0)
    order = np.argsort(-p, kind="stable")
    top = int(order[0])
    confidence = float(np.clip(p[top], 0.0, 1.0))
    second = float(p[order[1]]) if p.shape[0] > 1 else 0.0
    margin = float(np.clip(confidence - second, 0.0, 1.0))
    label = class_names[top]
    threshold = policy.threshold_for(label)
    scores = {name: float(p[i]) for i, name in enumerate(class_names)}
    if not finite:
        return Decision(label, 0.0, 0.0, scores, DecisionKind.review, "scores are not finite numbers")
    if confidence < threshold:
        reason = f"confidence {confidence:.3f} below threshold {threshold:.3f}"
        return Decision(label, confidence, margin, scores, DecisionKind.review, reason)
    if margin < policy.margin:
        reason = f"margin {margin:.3f} over the next class below minimum {policy.margin:.3f}"
        return Decision(label, confidence, margin, scores, DecisionKind.review, reason)
    reason = f"confidence {confidence:.3f} >= {threshold:.3f}, margin {margin:.3f} >= {policy.margin:.3f}"
    return Decision(label, confidence, margin, scores, DecisionKind.auto, reason)
