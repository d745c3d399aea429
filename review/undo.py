"""Undo: an operator's answer stays undoable for ``DOCSORT_REVIEW_UNDO_SECONDS``; delivery waits for it.

The rule: an answer can be undone by the operator who gave it while it is younger than the window
(and its document is still under review). A document whose pages are all answered is delivered only
once its latest answer is older than the window plus :data:`GRACE_SECONDS`, so an undo inside the
window never meets a delivered document: nothing delivered is ever taken back. With a window of 0
there is no undo and a document is delivered at once, inside the decision's transaction.

:func:`deliver_due` delivers what has waited long enough; the review application calls it before
its pages and decisions and every second in the background (:mod:`review.app`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from review.documents import answer_of, deliver_if_answered
from review.errors import NotUndoable
from review.timefmt import as_utc
from review.whole import take_back
from schema.enums import DecisionKind, DecisionOrigin
from schema.errors import DocsortError
from schema.logs import get_logger
from schema.settings import DocsortSettings
from schema.tables import OutputDocument, Page, Prediction, Review, RoutingDecision
from worker.documents import review_document_of_page

log = get_logger(__name__)
GRACE_SECONDS = 2.0  # between the end of the undo window and delivery: no undo races a delivery
SWEEP_LIMIT = 200  # documents looked at per sweep


@dataclass(frozen=True)
class Undone:
    prediction_id: int
    filename: str
    page_number: int


def deliver_due(session: Session, settings: DocsortSettings, now: datetime, window_seconds: float) -> int:
    """Deliver the documents under review whose pages are all answered and whose latest answer is older
    than the undo window plus the grace. Commits each document; returns how many were delivered."""
    cutoff = now - timedelta(seconds=window_seconds + (GRACE_SECONDS if window_seconds > 0 else 0))
    ids = session.scalars(
        select(OutputDocument.id)
        .join(Page, Page.document_id == OutputDocument.document_id)
        .join(Prediction, Prediction.page_id == Page.id)
        .join(Review, Review.prediction_id == Prediction.id)
        .where(OutputDocument.kind == DecisionKind.review, OutputDocument.superseded_at.is_(None))
        .group_by(OutputDocument.id)
        .having(func.max(Review.decided_at) <= cutoff)
        .order_by(OutputDocument.id)
        .limit(SWEEP_LIMIT)
    ).all()
    delivered = 0
    for output_id in ids:
        output = session.get(OutputDocument, output_id)
        if output is None or output.superseded_at is not None:
            continue
        try:
            done = deliver_if_answered(session, settings, output)
            session.commit()
        except (IntegrityError, OperationalError, DocsortError) as exc:
            session.rollback()  # another server process delivered it first, or delivery failed: next sweep
            log.warning("review.deliver_due_failed", output_id=output_id, error=str(exc))
            continue
        delivered += int(done)
    return delivered


def undo(
    session: Session, prediction_id: int, operator_id: int, now: datetime, window_seconds: float
) -> Undone:
    """Take back ``operator_id``'s answer on a page while it is younger than the window: the review and
    the operator's routing decision go, the page is back in the queue. Commits."""
    review = session.scalar(select(Review).where(Review.prediction_id == prediction_id))
    if review is None or review.operator_id != operator_id:
        raise NotUndoable("there is no answer of yours on this page to undo")
    age = (now - as_utc(review.decided_at)).total_seconds()
    if window_seconds <= 0 or age >= window_seconds:
        raise NotUndoable(f"answers can be undone for {window_seconds:g} s; this one is {age:.0f} s old")
    prediction = session.get(Prediction, prediction_id)
    assert prediction is not None
    page = prediction.page
    output = review_document_of_page(session, page.document_id, page.page_number)
    if output is None:
        raise NotUndoable("this page's document was delivered already")
    whole = answer_of(session, output.id)
    if whole is not None:  # answered whole: the whole answer goes
        take_back(session, whole, page.document_id)
        session.commit()
        log.info("review.undone", prediction_id=prediction_id, operator_id=operator_id, output_id=output.id)
        return Undone(prediction_id, page.document.filename or "", page.page_number)
    session.execute(
        delete(RoutingDecision).where(
            RoutingDecision.prediction_id == prediction_id,
            RoutingDecision.origin == DecisionOrigin.operator,
            RoutingDecision.destination.is_(None),
        )
    )
    session.delete(review)
    session.commit()
    log.info("review.undone", prediction_id=prediction_id, operator_id=operator_id)
    return Undone(prediction_id, page.document.filename or "", page.page_number)
