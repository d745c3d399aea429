"""The dashboard's quality section: live accuracy of automatic routing from audit answers, drift of
the live pages against validation, and the versions running in shadow, with their figures.

The numbers come from :func:`worker.quality.quality_report`, the same report the Prometheus metrics
are made from; the figures (:mod:`worker.quality_plots`, and the risk–coverage curve the trainer
saved with the version) are embedded in the page as PNG data, so the section needs no route of its own.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.tables import ModelVersion
from worker.drift import drift_by_day
from worker.live_accuracy import accuracy_by_day, version_targets
from worker.quality import QualityReport, quality_report
from worker.quality_plots import drift_png, live_accuracy_png

DRIFT_DAYS = 14
CACHE_SECONDS = 60.0  # a section is reused this long per database and period: drift reads many rows
RISK_COVERAGE_PNG = Path("report") / "risk_coverage.png"


@dataclass(frozen=True)
class Figure:
    title: str
    alt: str
    src: str  # data: URI


@dataclass
class QualitySection:
    report: QualityReport
    alerts: list[str]
    figures: list[Figure] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        r = self.report
        return not (r.accuracy or r.drift or r.shadows or r.problems)


_cache: dict[tuple[str, int], tuple[float, QualitySection]] = {}


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figures(session: Session, report: QualityReport) -> list[Figure]:
    figures: list[Figure] = []
    targets = version_targets(session)
    for row in session.scalars(select(ModelVersion).where(ModelVersion.active).order_by(ModelVersion.name)):
        model = f"{row.name}/{row.version}"
        days = accuracy_by_day(session, row.name, row.version)
        png = live_accuracy_png(days, targets.get((row.name, row.version)), f"{model}: live accuracy")
        figures.append(
            Figure(f"Live accuracy, {model}", "accuracy of audited documents by day", _data_uri(png))
        )
        if any(d.model == model for d in report.drift):
            since = report.now - timedelta(days=DRIFT_DAYS)
            png = drift_png(drift_by_day(session, row, since, report.now), f"{model}: drift by day")
            figures.append(Figure(f"Drift, {model}", "drift statistics by day", _data_uri(png)))
        curve = Path(row.path) / RISK_COVERAGE_PNG
        if curve.is_file():
            figures.append(
                Figure(
                    f"Risk–coverage, {model}", "validation risk-coverage curve", _data_uri(curve.read_bytes())
                )
            )
    return figures


def quality_section(session: Session, now: datetime, hours: int) -> QualitySection:
    """The section's numbers over the dashboard's period (drift, shadow) and all audit answers; the
    same section for :data:`CACHE_SECONDS` per database and period."""
    key = (str(session.get_bind().engine.url), hours)
    found = _cache.get(key)
    if found is not None and time.monotonic() - found[0] < CACHE_SECONDS:
        return found[1]
    report = quality_report(session, now, timedelta(hours=hours))
    section = QualitySection(report, report.alerts(), _figures(session, report))
    _cache[key] = (time.monotonic(), section)
    return section
