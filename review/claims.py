"""Claims: opening a page holds it for one operator for a few minutes; others see it as taken.

Taking a claim is atomic without locks: an UPDATE that only matches a claim that is ours or has
expired, else an INSERT that the primary key on ``prediction_id`` lets only one operator win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from review.timefmt import as_utc
from schema.logs import get_logger
from schema.tables import Operator, ReviewClaim

log = get_logger(__name__)


@dataclass(frozen=True)
class ClaimState:
    """Who holds a page, since when and until when; ``mine`` when the asking operator does."""

    holder_id: int
    holder_name: str
    claimed_at: datetime
    expires_at: datetime
    mine: bool


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


def current_claim(session: Session, prediction_id: int, operator_id: int, now: datetime) -> ClaimState | None:
    """The live claim on a page, or None when nobody holds it."""
    row = session.execute(
        select(ReviewClaim, Operator.name)
        .join(Operator, Operator.id == ReviewClaim.operator_id)
        .where(ReviewClaim.prediction_id == prediction_id)
    ).first()
    if row is None:
        return None
    claim, name = row
    expires = as_utc(claim.expires_at)
    if expires <= now:
        return None
    return ClaimState(
        holder_id=claim.operator_id,
        holder_name=name,
        claimed_at=as_utc(claim.claimed_at),
        expires_at=expires,
        mine=claim.operator_id == operator_id,
    )


def _try_take(session: Session, prediction_id: int, operator_id: int, now: datetime, ttl: timedelta) -> bool:
    until = now + ttl
    extended = session.execute(
        update(ReviewClaim)
        .where(
            ReviewClaim.prediction_id == prediction_id,
            ReviewClaim.operator_id == operator_id,
            ReviewClaim.expires_at > now,
        )
        .values(expires_at=until)
    )
    if _rowcount(extended):
        return True
    taken_over = session.execute(
        update(ReviewClaim)
        .where(
            ReviewClaim.prediction_id == prediction_id,
            or_(ReviewClaim.expires_at <= now, ReviewClaim.operator_id == operator_id),
        )
        .values(operator_id=operator_id, claimed_at=now, expires_at=until)
    )
    if _rowcount(taken_over):
        return True
    session.add(
        ReviewClaim(prediction_id=prediction_id, operator_id=operator_id, claimed_at=now, expires_at=until)
    )
    session.flush()
    return True


def claim(
    session: Session, prediction_id: int, operator_id: int, now: datetime, ttl: timedelta
) -> ClaimState | None:
    """Hold a page for ``operator_id`` (extending a claim already held). Returns the claim now in force:
    ``mine`` is False when another operator holds it. Commits."""
    try:
        _try_take(session, prediction_id, operator_id, now, ttl)
        session.commit()
    except (IntegrityError, OperationalError) as exc:
        session.rollback()  # another operator inserted first (or the database was busy): read who holds it
        log.info(
            "claim.lost", prediction_id=prediction_id, operator_id=operator_id, reason=type(exc).__name__
        )
    return current_claim(session, prediction_id, operator_id, now)


def release(session: Session, prediction_id: int, operator_id: int) -> bool:
    """Let go of a page held by ``operator_id``. Commits. True when a claim was released."""
    result = session.execute(
        delete(ReviewClaim).where(
            ReviewClaim.prediction_id == prediction_id, ReviewClaim.operator_id == operator_id
        )
    )
    session.commit()
    return _rowcount(result) > 0
