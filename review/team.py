"""Per-operator numbers for the dashboard: pages answered, pages per active hour, seconds per page,
relabel and reject rates, over the dashboard's period."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from review.stats import hour_bucket
from schema.enums import ReviewAction
from schema.tables import Operator, Review


@dataclass(frozen=True)
class OperatorNumbers:
    name: str
    pages: int
    active_hours: int  # hours of the period with at least one answer
    seconds_per_page: float | None  # median time from opening a page to answering it
    relabelled: int
    rejected: int

    @property
    def pages_per_hour(self) -> float:
        return self.pages / self.active_hours if self.active_hours else 0.0

    @property
    def relabel_rate(self) -> float:
        return self.relabelled / self.pages if self.pages else 0.0

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.pages if self.pages else 0.0


def team_numbers(session: Session, now: datetime, hours: int) -> list[OperatorNumbers]:
    """Each operator who answered pages in the last ``hours``, busiest first."""
    since = now - timedelta(hours=hours)
    bucket = hour_bucket(session, Review.decided_at)
    active = dict(
        session.execute(
            select(Review.operator_id, func.count(func.distinct(bucket)))
            .where(Review.decided_at >= since)
            .group_by(Review.operator_id)
        ).all()
    )
    rows = session.execute(
        select(Operator.id, Operator.name, Review.action, Review.duration_ms)
        .join(Operator, Operator.id == Review.operator_id)
        .where(Review.decided_at >= since)
    ).all()
    by_operator: dict[int, list[tuple[str, ReviewAction, int | None]]] = {}
    for operator_id, name, action, duration_ms in rows:
        by_operator.setdefault(operator_id, []).append((name, ReviewAction(action), duration_ms))
    numbers = []
    for operator_id, answers in by_operator.items():
        durations = [ms / 1000 for _, _, ms in answers if ms is not None]
        numbers.append(
            OperatorNumbers(
                name=answers[0][0],
                pages=len(answers),
                active_hours=int(active.get(operator_id, 0)),
                seconds_per_page=statistics.median(durations) if durations else None,
                relabelled=sum(1 for _, a, _ in answers if a == ReviewAction.relabel),
                rejected=sum(1 for _, a, _ in answers if a == ReviewAction.reject),
            )
        )
    return sorted(numbers, key=lambda n: (-n.pages, n.name))
