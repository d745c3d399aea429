"""How a version running in shadow (:mod:`worker.shadow`) compares on live pages: agreement with the
model that routed each page, accuracy of both on the pages operators labelled (:mod:`worker.labels`),
and the review rate each one's own thresholds give on the same pages. Every share comes with its exact
binomial interval (:mod:`worker.binomial`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from schema.enums import DecisionOrigin
from schema.manifest import ModelManifest
from schema.tables import ModelVersion, Prediction, RoutingDecision
from worker.binomial import Interval, interval
from worker.decide import Policy, auto_mask
from worker.labels import operator_labels

LEVEL = 0.95


def shadow_versions(session: Session, since: datetime) -> list[tuple[str, str]]:
    """Versions that predicted pages since ``since`` without routing any: those run in shadow."""
    predicted = set(
        session.execute(
            select(Prediction.model_name, Prediction.model_version)
            .where(Prediction.created_at >= since)
            .group_by(Prediction.model_name, Prediction.model_version)
        ).all()
    )
    routing = set(
        session.execute(
            select(Prediction.model_name, Prediction.model_version)
            .join(RoutingDecision, RoutingDecision.prediction_id == Prediction.id)
            .where(Prediction.created_at >= since, RoutingDecision.origin == DecisionOrigin.model)
            .group_by(Prediction.model_name, Prediction.model_version)
        ).all()
    )
    return sorted(predicted - routing)


@dataclass(frozen=True)
class ShadowReport:
    shadow: str  # name/version
    active: list[str]  # the versions that routed the same pages
    agreement: Interval  # pages where the shadow's class is the routing model's
    shadow_right: Interval  # of the pages operators labelled
    active_right: Interval
    shadow_review_rate: float | None  # by the shadow's own thresholds, on the same pages
    active_review_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        def share(ci: Interval) -> dict[str, Any]:
            return {"k": ci.k, "n": ci.n, "share": ci.estimate, "low": ci.low, "high": ci.high}

        return {
            "shadow": self.shadow,
            "active": self.active,
            "agreement": share(self.agreement),
            "shadow_accuracy_on_operator_labels": share(self.shadow_right),
            "active_accuracy_on_operator_labels": share(self.active_right),
            "shadow_review_rate": self.shadow_review_rate,
            "active_review_rate": self.active_review_rate,
        }


def _policies(session: Session) -> dict[str, tuple[list[str], Policy]]:
    out: dict[str, tuple[list[str], Policy]] = {}
    for row in session.scalars(select(ModelVersion)):
        try:
            manifest = ModelManifest.model_validate(row.manifest)
        except ValueError:  # a row whose manifest this docsort cannot read: no thresholds to apply
            continue
        out[f"{row.name}/{row.version}"] = (manifest.class_names, Policy.from_thresholds(manifest.thresholds))
    return out


def _review_rate(scores: list[dict[str, Any]], policy: tuple[list[str], Policy] | None) -> float | None:
    if policy is None or not scores:
        return None
    names, rule = policy
    probs = np.array([[float(s.get(c, 0.0)) for c in names] for s in scores], np.float64)
    return 1.0 - float(auto_mask(probs, names, rule).mean())


def shadow_report(session: Session, name: str, version: str, since: datetime) -> ShadowReport:
    """The shadow version ``name``/``version`` on the pages it scored since ``since``."""
    routing = aliased(Prediction)
    found = session.execute(
        select(
            Prediction.page_id,
            Prediction.label,
            Prediction.scores,
            routing.label,
            routing.scores,
            routing.model_name,
            routing.model_version,
        )
        .join(routing, routing.page_id == Prediction.page_id)
        .join(RoutingDecision, RoutingDecision.prediction_id == routing.id)
        .where(
            Prediction.model_name == name,
            Prediction.model_version == version,
            Prediction.created_at >= since,
            routing.id != Prediction.id,
            RoutingDecision.origin == DecisionOrigin.model,
        )
    ).all()
    rows = [(*r[:5], f"{r[5]}/{r[6]}") for r in found]
    pages = {r[0] for r in rows}
    labels = {item.page_id: item.label for item in operator_labels(session) if item.page_id in pages}
    labelled = [r for r in rows if r[0] in labels]
    policies = _policies(session)
    actives = sorted({r[5] for r in rows})
    active_policy = policies.get(actives[0]) if len(actives) == 1 else None
    return ShadowReport(
        shadow=f"{name}/{version}",
        active=actives,
        agreement=interval(sum(r[1] == r[3] for r in rows), len(rows), LEVEL),
        shadow_right=interval(sum(r[1] == labels[r[0]] for r in labelled), len(labelled), LEVEL),
        active_right=interval(sum(r[3] == labels[r[0]] for r in labelled), len(labelled), LEVEL),
        shadow_review_rate=_review_rate([r[2] or {} for r in rows], policies.get(f"{name}/{version}")),
        active_review_rate=_review_rate([r[4] or {} for r in rows], active_policy),
    )
