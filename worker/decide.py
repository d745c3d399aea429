"""Decide: a page goes to automatic routing or to review, from its class scores and the thresholds.

The rule, for calibrated probabilities: a page is routed automatically when its scores are finite and

    confidence >= per_class.get(predicted class, confidence threshold)  and  top1 - top2 >= margin

:func:`auto_mask` is its one implementation, over many pages at once; :func:`decide` applies it to one
page and says why. The trainer chooses the thresholds with the same function (``trainer.thresholds``),
so what it promises for validation pages is what a worker does.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def _rows(probs: np.ndarray, n_classes: int) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != n_classes:
        raise ValueError(f"{p.shape[-1] if p.ndim else 0} scores for {n_classes} classes")
    return p


def top2(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted class, confidence and top1 − top2 margin of each row, as the rule reads them.

    Non-finite scores are read as 0 (NaN, −inf) or 1 (+inf); confidence and margin lie in [0, 1].
    """
    p = np.nan_to_num(np.asarray(probs, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    ranked = np.sort(p, axis=1)
    confidence = np.clip(ranked[:, -1], 0.0, 1.0)
    second = ranked[:, -2] if p.shape[1] > 1 else np.zeros(p.shape[0])
    return p.argmax(axis=1), confidence, np.clip(confidence - second, 0.0, 1.0)


def auto_mask(probs: np.ndarray, class_names: Sequence[str], policy: Policy) -> np.ndarray:
    """True where the rule routes the page (a row of ``probs``) automatically."""
    p = _rows(probs, len(class_names))
    pred, confidence, margin = top2(p)
    thresholds = np.array([policy.threshold_for(name) for name in class_names], dtype=np.float64)
    passes = (confidence >= thresholds[pred]) & (margin >= policy.margin)
    return np.isfinite(p).all(axis=1) & passes  # type: ignore[no-any-return]


def decide(probs: np.ndarray, class_names: list[str], policy: Policy) -> Decision:
    """One page's decision from its probability vector."""
    p = _rows(np.asarray(probs, dtype=np.float64).reshape(1, -1), len(class_names))
    auto = bool(auto_mask(p, class_names, policy)[0])
    pred, conf, marg = top2(p)
    label, confidence, margin = class_names[int(pred[0])], float(conf[0]), float(marg[0])
    threshold = policy.threshold_for(label)
    clean = np.nan_to_num(p[0], nan=0.0, posinf=1.0, neginf=0.0)
    scores = {name: float(clean[i]) for i, name in enumerate(class_names)}
    if not np.isfinite(p).all():
        return Decision(label, 0.0, 0.0, scores, DecisionKind.review, "scores are not finite numbers")
    if auto:
        reason = f"confidence {confidence:.3f} >= {threshold:.3f}, margin {margin:.3f} >= {policy.margin:.3f}"
        return Decision(label, confidence, margin, scores, DecisionKind.auto, reason)
    if confidence < threshold:
        reason = f"confidence {confidence:.3f} below threshold {threshold:.3f}"
    else:
        reason = f"margin {margin:.3f} over the next class below minimum {policy.margin:.3f}"
    return Decision(label, confidence, margin, scores, DecisionKind.review, reason)
