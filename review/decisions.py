"""An operator's decision on a page: record the review, then deliver the page as an automatic decision would.

A page is never decided twice: ``reviews.prediction_id`` is UNIQUE, the review row is written (and
flushed) before anything is routed, and a second writer, however close in time, gets the database's
IntegrityError, which becomes :class:`AlreadyDecided`. The review row and the routing decision commit
together; if routing fails, neither is kept and the page stays in the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from review.claims import current_claim
from review.documents import deliver_reviewed
from review.errors import AlreadyDecided, InvalidLabel, ItemNotFound, ItemTaken, ReviewError
from review.timefmt import as_utc
from schema.enums import DecisionKind, DecisionOrigin, ReviewAction
from schema.errors import DocsortError
from schema.logs import get_logger
from schema.settings import DocsortSettings
from schema.tables import Operator, Prediction, Review, ReviewClaim, RoutingDecision

log = get_logger(__name__)

RouteReviewed = Callable[[Session, DocsortSettings, int, str | None], object]


@dataclass(frozen=True)
class Outcome:
    review_id: int
    prediction_id: int
    action: ReviewAction
    final_label: str | None
    duration_ms: int | None


def class_names(prediction: Prediction) -> list[str]:
    """The model's classes, in the order its scores were recorded."""
    return [str(name) for name in (prediction.scores or {})]


def decided_by(session: Session, prediction_id: int) -> tuple[Review, str] | None:
    """The review of a page and the operator's name, if it was decided."""
    row = session.execute(
        select(Review, Operator.name)
        .join(Operator, Operator.id == Review.operator_id)
        .where(Review.prediction_id == prediction_id)
    ).first()
    return None if row is None else (row[0], row[1])


def _already(session: Session, prediction_id: int) -> AlreadyDecided:
    found = decided_by(session, prediction_id)
    if found is None:
        return AlreadyDecided(f"page {prediction_id} is being decided by someone else; reload the queue")
    review, name = found
    what = review.final_label or "rejected"
    return AlreadyDecided(f"this page was already decided by {name} ({review.action.value}: {what})")


def _review_item(session: Session, prediction_id: int) -> Prediction:
    prediction = session.get(Prediction, prediction_id)
    sent_to_review = session.scalar(
        select(RoutingDecision.id).where(
            RoutingDecision.prediction_id == prediction_id,
            RoutingDecision.origin == DecisionOrigin.model,
            RoutingDecision.kind == DecisionKind.review,
        )
    )
    if prediction is None or sent_to_review is None:
        raise ItemNotFound(f"no page waits for review under id {prediction_id}")
    return prediction


def _action_for(prediction: Prediction, label: str | None) -> ReviewAction:
    if label is None:
        return ReviewAction.reject
    if label not in class_names(prediction):
        raise InvalidLabel(
            f"{label!r} is not one of the model's classes ({', '.join(class_names(prediction))})"
        )
    return ReviewAction.confirm if label == prediction.label else ReviewAction.relabel


def decide(
    session: Session,
    settings: DocsortSettings,
    *,
    prediction_id: int,
    operator_id: int,
    label: str | None,
    note: str | None,
    now: datetime,
    route: RouteReviewed = deliver_reviewed,
) -> Outcome:
    """Record the operator's decision (``label`` None: rejected as unreadable) and route the page. Commits."""
    prediction = _review_item(session, prediction_id)
    action = _action_for(prediction, label)
    claim = current_claim(session, prediction_id, operator_id, now)
    if claim is not None and not claim.mine:
        raise ItemTaken(
            f"{claim.holder_name} holds this page until {claim.expires_at:%H:%M:%S} UTC", claim.holder_name
        )
    opened_at = claim.claimed_at if claim is not None else None
    duration_ms = int((now - as_utc(opened_at)).total_seconds() * 1000) if opened_at else None
    review = Review(
        prediction_id=prediction_id,
        operator_id=operator_id,
        action=action,
        final_label=label,
        note=(note or "").strip() or None,
        opened_at=opened_at,
        decided_at=now,
        duration_ms=duration_ms,
    )
    session.add(review)
    try:
        session.flush()  # the UNIQUE prediction_id: a second decision stops here, before any routing
    except (IntegrityError, OperationalError) as exc:
        session.rollback()
        raise _already(session, prediction_id) from exc
    try:
        session.query(ReviewClaim).filter(ReviewClaim.prediction_id == prediction_id).delete()
        route(session, settings, prediction_id, label)
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise _already(session, prediction_id) from exc
    except DocsortError as exc:
        session.rollback()
        raise ReviewError(f"the page could not be routed, the decision was not saved: {exc}") from exc
    log.info(
        "review.decided",
        prediction_id=prediction_id,
        operator_id=operator_id,
        action=action.value,
        label=label,
    )
    return Outcome(review.id, prediction_id, action, label, duration_ms)
