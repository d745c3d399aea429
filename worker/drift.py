"""Drift: a version's live pages against the validation pages its thresholds were chosen on.

The reference is stored with the version (``report/confidence_scores.npz``, read by
:mod:`worker.validation_scores`, at the version's temperature); the live sample is the version's
predictions of content pages in a time window (its shadow predictions included, so a candidate
running in shadow is measured the same way). Three statistics, each with a stated rule:

- **top-class confidence**: two-sample Kolmogorov–Smirnov test (``scipy.stats.ks_2samp``); drift when
  its p-value is below :data:`ALPHA` (0.01). The statistic D is the largest gap between the two
  cumulative distributions.
- **predicted class mix**: population stability index ``PSI = Σ (live − ref) · ln(live / ref)`` over
  the classes' shares (each floored at :data:`PSI_FLOOR`); below 0.1 stable, 0.1–0.2 ``watch``, at or
  above :data:`PSI_DRIFT` (0.2) drift: the rule of thumb credit-scoring models are monitored by.
- **review rate**: each live page's own scores against the version's thresholds (the one decision
  rule, :func:`worker.decide.auto_mask`), against the rate the same thresholds give on the validation
  pages (what they promised); exact two-sided binomial test, drift when p < :data:`ALPHA`.

With fewer than :data:`MIN_PAGES` live pages every verdict is ``too few pages``. With many pages the
tests find small differences significant: the size (D, PSI, the two rates) says whether they matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.enums import PageRole
from schema.manifest import ModelManifest
from schema.tables import ModelVersion, Page, Prediction
from worker.binomial import two_sided_p
from worker.decide import Policy, auto_mask, top2
from worker.validation_scores import Reference, reference

ALPHA = 0.01
PSI_WATCH, PSI_DRIFT = 0.1, 0.2
PSI_FLOOR = 1e-4
MIN_PAGES = 50
MAX_LIVE_PAGES = 50_000  # the most recent pages of the window are compared, at most this many
MAX_DAY_PAGES = 5_000  # by day (figures), at most this many pages of each day
OK, WATCH, DRIFT, TOO_FEW = "ok", "watch", "drift", "too few pages"


@dataclass(frozen=True)
class Statistic:
    key: str  # ks, psi, review_rate
    name: str
    value: float | None  # D, PSI, or the live review rate
    reference: float | None  # the promised review rate (review_rate only)
    p_value: float | None
    rule: str
    verdict: str


@dataclass
class LiveSample:
    probs: np.ndarray  # N x classes, as recorded (calibrated)
    created_at: list[datetime]


@dataclass
class DriftReport:
    model_name: str
    model_version: str
    since: datetime
    until: datetime
    n_live: int
    n_reference: int
    statistics: list[Statistic]
    class_mix: dict[str, tuple[float, float]] = field(default_factory=dict)  # class: (live, reference)

    @property
    def model(self) -> str:
        return f"{self.model_name}/{self.model_version}"

    @property
    def verdict(self) -> str:
        verdicts = [s.verdict for s in self.statistics]
        for level in (DRIFT, WATCH, TOO_FEW):
            if level in verdicts:
                return level
        return OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "live_pages": self.n_live,
            "reference_pages": self.n_reference,
            "verdict": self.verdict,
            "statistics": [vars(s) for s in self.statistics],
            "class_mix": {k: {"live": v[0], "reference": v[1]} for k, v in self.class_mix.items()},
        }


def psi(live: np.ndarray, ref: np.ndarray) -> float:
    """Population stability index of two vectors of shares (floored at :data:`PSI_FLOOR`)."""
    p = np.maximum(np.asarray(live, np.float64), PSI_FLOOR)
    q = np.maximum(np.asarray(ref, np.float64), PSI_FLOOR)
    return float(np.sum((p - q) * np.log(p / q)))


def class_shares(probs: np.ndarray, n_classes: int) -> np.ndarray:
    pred, _, _ = top2(probs)
    counts = np.bincount(pred, minlength=n_classes).astype(np.float64)
    return counts / max(1, counts.sum())


def confidence_shift(live: np.ndarray, ref: np.ndarray) -> Statistic:
    rule = f"Kolmogorov–Smirnov, drift when p < {ALPHA:g}"
    if live.size < MIN_PAGES:
        return Statistic("ks", "top-class confidence", None, None, None, rule, TOO_FEW)
    from scipy.stats import ks_2samp  # heavy (0.9 s): only when drift is measured

    test = ks_2samp(live, ref)
    p = float(test.pvalue)
    return Statistic(
        "ks", "top-class confidence", float(test.statistic), None, p, rule, DRIFT if p < ALPHA else OK
    )


def mix_shift(live: np.ndarray, ref: np.ndarray, n_live: int) -> Statistic:
    rule = f"PSI over classes: watch ≥ {PSI_WATCH:g}, drift ≥ {PSI_DRIFT:g}"
    if n_live < MIN_PAGES:
        return Statistic("psi", "predicted class mix", None, None, None, rule, TOO_FEW)
    value = psi(live, ref)
    verdict = DRIFT if value >= PSI_DRIFT else WATCH if value >= PSI_WATCH else OK
    return Statistic("psi", "predicted class mix", value, None, None, rule, verdict)


def review_shift(n_review: int, n: int, promised: float) -> Statistic:
    rule = f"exact binomial test against the promised rate, drift when p < {ALPHA:g}"
    if n < MIN_PAGES:
        return Statistic("review_rate", "review rate", None, promised, None, rule, TOO_FEW)
    p = two_sided_p(n_review, n, promised)
    return Statistic(
        "review_rate", "review rate", n_review / n, promised, p, rule, DRIFT if p < ALPHA else OK
    )


def compare(
    live: np.ndarray, ref: Reference, policy: Policy
) -> tuple[list[Statistic], dict[str, tuple[float, float]]]:
    """The three statistics of live calibrated probabilities against the reference."""
    names, k = ref.class_names, len(ref.class_names)
    live = np.asarray(live, np.float64).reshape(-1, k)
    _, live_conf, _ = top2(live)
    _, ref_conf, _ = top2(ref.probs)
    live_mix, ref_mix = class_shares(live, k), class_shares(ref.probs, k)
    promised = 1.0 - float(auto_mask(ref.probs, names, policy).mean())
    n_review = int((~auto_mask(live, names, policy)).sum())
    stats = [
        confidence_shift(live_conf, ref_conf),
        mix_shift(live_mix, ref_mix, live.shape[0]),
        review_shift(n_review, live.shape[0], promised),
    ]
    mix = {name: (float(live_mix[i]), float(ref_mix[i])) for i, name in enumerate(names)}
    return stats, mix


def live_sample(
    session: Session,
    name: str,
    version: str,
    class_names: Sequence[str],
    since: datetime,
    until: datetime,
    limit: int = MAX_LIVE_PAGES,
) -> LiveSample:
    """The version's predictions of content pages made in [since, until), the most recent first."""
    rows = session.execute(
        select(Prediction.scores, Prediction.created_at)
        .join(Page, Page.id == Prediction.page_id)
        .where(
            Prediction.model_name == name,
            Prediction.model_version == version,
            Prediction.created_at >= since,
            Prediction.created_at < until,
            Page.role == PageRole.content,
        )
        .order_by(Prediction.created_at.desc())
        .limit(limit)
    ).all()
    probs = np.array([[float((s or {}).get(c, 0.0)) for c in class_names] for s, _ in rows], np.float64)
    return LiveSample(probs.reshape(-1, len(class_names)), [t for _, t in rows])


def version_policy(manifest: ModelManifest) -> Policy:
    """The thresholds as the version states them (what its promise is about; overrides not applied)."""
    return Policy.from_thresholds(manifest.thresholds)


def drift_report(
    session: Session,
    row: ModelVersion,
    since: datetime,
    until: datetime,
    ref: Reference | None = None,
    limit: int = MAX_LIVE_PAGES,
) -> DriftReport:
    """Drift of one registered version's live pages in [since, until) against its validation pages."""
    manifest = ModelManifest.model_validate(row.manifest)
    ref = ref or reference(Path(row.path), manifest)
    sample = live_sample(session, row.name, row.version, manifest.class_names, since, until, limit)
    stats, mix = compare(sample.probs, ref, version_policy(manifest))
    n_ref = int(ref.probs.shape[0])
    return DriftReport(row.name, row.version, since, until, sample.probs.shape[0], n_ref, stats, mix)


def drift_by_day(
    session: Session, row: ModelVersion, since: datetime, until: datetime, ref: Reference | None = None
) -> list[DriftReport]:
    """One report per UTC day of [since, until) (days with no pages left out; at most
    :data:`MAX_DAY_PAGES` pages a day)."""
    manifest = ModelManifest.model_validate(row.manifest)
    ref = ref or reference(Path(row.path), manifest)
    day = since.replace(hour=0, minute=0, second=0, microsecond=0)
    out: list[DriftReport] = []
    while day < until:
        end = min(day + timedelta(days=1), until)
        report = drift_report(session, row, max(day, since), end, ref, MAX_DAY_PAGES)
        if report.n_live:
            out.append(report)
        day += timedelta(days=1)
    return out
