"""Numbers behind the dashboard: throughput per hour, review rate, classes, queue age, model versions.

Grouping by hour happens in SQL (SQLite ``strftime``, PostgreSQL ``date_trunc``) so a busy day is a
few dozen rows, not every page.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from review.queue import pending_select
from review.timefmt import as_utc
from schema.enums import DecisionKind, DecisionOrigin, ReviewAction
from schema.tables import ModelVersion, Prediction, Review, RoutingDecision

HOUR_FORMAT = "%Y-%m-%d %H:00"
AGE_BUCKETS: list[tuple[str, timedelta]] = [
    ("< 15 min", timedelta(minutes=15)),
    ("15–60 min", timedelta(hours=1)),
    ("1–4 h", timedelta(hours=4)),
    ("4–24 h", timedelta(days=1)),
    ("1–7 d", timedelta(days=7)),
]
OLDER = "> 7 d"


@dataclass
class HourRow:
    start: datetime
    auto: int = 0
    review: int = 0
    failed: int = 0
    reviewed: int = 0

    @property
    def pages(self) -> int:
        return self.auto + self.review + self.failed

    @property
    def review_rate(self) -> float | None:
        classified = self.auto + self.review
        return self.review / classified if classified else None


@dataclass(frozen=True)
class VersionRow:
    model: str
    pages: int
    sent_to_review: int
    reviewed: int
    corrected: int
    active: bool


@dataclass
class Dashboard:
    now: datetime
    hours: list[HourRow]
    auto_by_class: Counter[str] = field(default_factory=Counter)
    reviewed_by_class: Counter[str] = field(default_factory=Counter)
    pending_by_class: Counter[str] = field(default_factory=Counter)
    queue_ages: list[tuple[str, int]] = field(default_factory=list)
    oldest: datetime | None = None
    versions: list[VersionRow] = field(default_factory=list)
    reviews_24h: int = 0
    rejected_24h: int = 0
    median_review_s: float | None = None

    @property
    def pending(self) -> int:
        return sum(self.pending_by_class.values())

    @property
    def pages_in_period(self) -> int:
        return sum(h.pages for h in self.hours)

    @property
    def review_rate_in_period(self) -> float | None:
        auto = sum(h.auto for h in self.hours)
        review = sum(h.review for h in self.hours)
        return review / (auto + review) if auto + review else None


def hour_bucket(session: Session, column: Any) -> Any:
    """An SQL expression naming the UTC hour of ``column`` as text (``HOUR_FORMAT``)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.date_trunc("hour", func.timezone("UTC", column)), "YYYY-MM-DD HH24:00")
    return func.strftime("%Y-%m-%d %H:00", column)


def _hours(session: Session, now: datetime, hours: int) -> list[HourRow]:
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    rows = {first + timedelta(hours=i): HourRow(first + timedelta(hours=i)) for i in range(hours)}

    def slot(text: str) -> HourRow | None:
        return rows.get(datetime.strptime(text, HOUR_FORMAT).replace(tzinfo=UTC))

    bucket = hour_bucket(session, RoutingDecision.decided_at)
    decided = session.execute(
        select(bucket, RoutingDecision.kind, func.count(RoutingDecision.id))
        .where(RoutingDecision.origin == DecisionOrigin.model, RoutingDecision.decided_at >= first)
        .group_by(bucket, RoutingDecision.kind)
    )
    for text, kind, count in decided:
        row = slot(text)
        if row is not None:
            setattr(row, DecisionKind(kind).value, count)
    review_bucket = hour_bucket(session, Review.decided_at)
    reviewed = session.execute(
        select(review_bucket, func.count(Review.id)).where(Review.decided_at >= first).group_by(review_bucket)
    )
    for text, count in reviewed:
        row = slot(text)
        if row is not None:
            row.reviewed = count
    return list(rows.values())


def _classes(session: Session, board: Dashboard) -> None:
    auto = session.execute(
        select(RoutingDecision.label, func.count(RoutingDecision.id))
        .where(RoutingDecision.origin == DecisionOrigin.model, RoutingDecision.kind == DecisionKind.auto)
        .group_by(RoutingDecision.label)
    )
    board.auto_by_class.update({str(label): n for label, n in auto if label is not None})
    reviewed = session.execute(
        select(Review.final_label, func.count(Review.id))
        .where(Review.final_label.is_not(None))
        .group_by(Review.final_label)
    )
    board.reviewed_by_class.update({str(label): n for label, n in reviewed})
    pending = session.execute(
        pending_select(Prediction.label, func.count(Prediction.id)).group_by(Prediction.label)
    )
    board.pending_by_class.update({str(label): n for label, n in pending})


def _queue_ages(session: Session, board: Dashboard) -> None:
    waiting = [as_utc(t) for t in session.scalars(pending_select(RoutingDecision.decided_at))]
    counts = Counter[str]()
    for since in waiting:
        age = board.now - since
        name = next((label for label, limit in AGE_BUCKETS if age < limit), OLDER)
        counts[name] += 1
    board.queue_ages = [(label, counts[label]) for label, _ in AGE_BUCKETS] + [(OLDER, counts[OLDER])]
    board.oldest = min(waiting) if waiting else None


def _versions(session: Session, board: Dashboard) -> None:
    key = (Prediction.model_name, Prediction.model_version)
    pages = dict(
        ((n, v), c) for n, v, c in session.execute(select(*key, func.count(Prediction.id)).group_by(*key))
    )
    sent = dict(
        ((n, v), c)
        for n, v, c in session.execute(
            select(*key, func.count(Prediction.id))
            .join(RoutingDecision, RoutingDecision.prediction_id == Prediction.id)
            .where(
                RoutingDecision.origin == DecisionOrigin.model, RoutingDecision.kind == DecisionKind.review
            )
            .group_by(*key)
        )
    )
    reviewed: Counter[tuple[str, str]] = Counter()
    corrected: Counter[tuple[str, str]] = Counter()
    for n, v, action, c in session.execute(
        select(*key, Review.action, func.count(Review.id))
        .join(Review, Review.prediction_id == Prediction.id)
        .group_by(*key, Review.action)
    ):
        reviewed[(n, v)] += c
        if action != ReviewAction.confirm:
            corrected[(n, v)] += c
    active = {
        (n, v)
        for n, v in session.execute(
            select(ModelVersion.name, ModelVersion.version).where(ModelVersion.active)
        )
    }
    board.versions = [
        VersionRow(
            f"{n} {v}",
            pages[(n, v)],
            sent.get((n, v), 0),
            reviewed[(n, v)],
            corrected[(n, v)],
            (n, v) in active,
        )
        for n, v in sorted(pages)
    ]


def _review_times(session: Session, board: Dashboard) -> None:
    since = board.now - timedelta(hours=24)
    rows = session.execute(select(Review.action, Review.duration_ms).where(Review.decided_at >= since)).all()
    board.reviews_24h = len(rows)
    board.rejected_24h = sum(1 for action, _ in rows if action == ReviewAction.reject)
    durations = [ms / 1000 for _, ms in rows if ms is not None]
    board.median_review_s = statistics.median(durations) if durations else None


def dashboard(session: Session, now: datetime, hours: int = 24) -> Dashboard:
    board = Dashboard(now=now, hours=_hours(session, now, hours))
    _classes(session, board)
    _queue_ages(session, board)
    _versions(session, board)
    _review_times(session, board)
    return board
