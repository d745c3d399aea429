"""Quality of automatic routing in one report: live accuracy from audits, drift against validation,
and the versions running in shadow. The dashboard section (``review.quality``), the Prometheus
metrics (:mod:`worker.metrics`) and ``docsort models drift`` read it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.errors import DocsortError, ModelIncompatible
from schema.logs import get_logger
from schema.tables import ModelVersion
from worker.drift import DRIFT, DriftReport, drift_report
from worker.live_accuracy import LiveAccuracy, live_accuracy
from worker.shadow_stats import ShadowReport, shadow_report, shadow_versions

log = get_logger(__name__)


@dataclass
class QualityReport:
    now: datetime
    since: datetime  # the drift and shadow window's start
    accuracy: list[LiveAccuracy] = field(default_factory=list)
    drift: list[DriftReport] = field(default_factory=list)
    shadows: list[ShadowReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # versions whose reference could not be read

    def alerts(self) -> list[str]:
        """One sentence per alert, for a person."""
        out = []
        for item in self.accuracy:
            if item.alert and item.target is not None and item.interval.low is not None:
                scope = f"class {item.label}" if item.label else "all classes"
                out.append(
                    f"{item.model} ({scope}): live accuracy {100 * (item.interval.estimate or 0):.2f}%, "
                    f"{100 * item.interval.level:g}% interval from {100 * item.interval.low:.2f}% — "
                    f"below the {100 * item.target:.2f}% target ({item.verdict}; "
                    f"{item.interval.k} of {item.interval.n} audited documents right)"
                )
        for report in self.drift:
            for stat in report.statistics:
                if stat.verdict == DRIFT:
                    out.append(f"{report.model}: {stat.name} drifted ({stat.rule})")
        return out


def drift_versions(session: Session, since: datetime) -> list[ModelVersion]:
    """The active versions and the registered versions running in shadow."""
    rows = list(session.scalars(select(ModelVersion).where(ModelVersion.active).order_by(ModelVersion.name)))
    for name, version in shadow_versions(session, since):
        row = session.scalar(
            select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
        )
        if row is not None and row not in rows:
            rows.append(row)
    return rows


def quality_report(session: Session, now: datetime, window: timedelta) -> QualityReport:
    """Live accuracy of every audited version, drift of the active and shadow versions over the last
    ``window``, and every shadow version's comparison over the same window."""
    since = now - window
    report = QualityReport(now, since, accuracy=live_accuracy(session))
    for row in drift_versions(session, since):
        if not Path(row.path).is_dir():
            report.problems.append(f"{row.name}/{row.version}: no version folder at {row.path}")
            continue
        try:
            report.drift.append(drift_report(session, row, since, now))
        except (DocsortError, ModelIncompatible, ValueError) as exc:
            report.problems.append(f"{row.name}/{row.version}: {exc}")
            log.warning("quality.drift_unavailable", model=f"{row.name}/{row.version}", reason=str(exc))
    for name, version in shadow_versions(session, since):
        report.shadows.append(shadow_report(session, name, version, since))
    return report
