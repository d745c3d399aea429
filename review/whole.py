"""A document under review answered whole: its pages in a strip, split points, a class per part.

The operator's answer is recorded as one :class:`~schema.tables.DocumentReview` (the parts) and a
review of every page (so the pages leave the queue and their answers become training labels), and is
delivered by the same rule as page answers (:mod:`review.undo`): at once with no undo window, else once
the window has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from review.claims import current_claim
from review.documents import decide_review_document, model_classes, record_reviewed
from review.errors import AlreadyDecided, InvalidLabel, ItemTaken, ReviewError
from review.timefmt import as_utc
from schema.enums import DecisionOrigin, DocumentAction, ReviewAction
from schema.errors import DocsortError
from schema.logs import get_logger
from schema.settings import DocsortSettings
from schema.tables import (
    DocumentReview,
    OutputDocument,
    Page,
    Prediction,
    Review,
    ReviewClaim,
    RoutingDecision,
)
from worker.documents import DocumentDecisionError, Part, check_parts, review_document_of_page

log = get_logger(__name__)


@dataclass(frozen=True)
class DocumentPage:
    page_number: int
    prediction_id: int
    label: str
    confidence: float
    has_image: bool


@dataclass(frozen=True)
class ReviewDocument:
    output_id: int
    label: str
    pages: list[DocumentPage]


def document_of(session: Session, prediction_id: int) -> ReviewDocument | None:
    """The document under review that holds the page of ``prediction_id`` and its pages, if any."""
    prediction = session.get(Prediction, prediction_id)
    if prediction is None:
        return None
    page = prediction.page
    output = review_document_of_page(session, page.document_id, page.page_number)
    if output is None:
        return None
    rows = session.execute(
        select(Page.page_number, Prediction.id, Prediction.label, Prediction.confidence, Page.image_path)
        .join(Prediction, Prediction.page_id == Page.id)
        .where(
            Page.document_id == output.document_id,
            Page.page_number.in_(list(output.pages)),
            Prediction.model_name == output.model_name,
            Prediction.model_version == output.model_version,
        )
        .order_by(Page.page_number)
    ).all()
    pages = [DocumentPage(n, pid, label, conf, bool(image)) for n, pid, label, conf, image in rows]
    return ReviewDocument(output.id, output.label or prediction.label, pages)


def _action(output: OutputDocument, parts: Sequence[Part]) -> DocumentAction:
    if len(parts) > 1:
        return DocumentAction.split_up
    if parts[0].label is None:
        return DocumentAction.reject
    return DocumentAction.confirm if parts[0].label == output.label else DocumentAction.relabel


def _page_action(prediction_label: str, label: str | None) -> ReviewAction:
    if label is None:
        return ReviewAction.reject
    return ReviewAction.confirm if label == prediction_label else ReviewAction.relabel


def decide_whole(
    session: Session,
    settings: DocsortSettings,
    *,
    prediction_id: int,
    parts: Sequence[Part],
    operator_id: int,
    now: datetime,
    deliver_now: bool,
) -> tuple[ReviewDocument, DocumentReview]:
    """Answer the document under review holding ``prediction_id`` with ``parts``; delivered at once
    when ``deliver_now``, else by :func:`review.undo.deliver_due`. Commits."""
    document = document_of(session, prediction_id)
    if document is None:
        raise AlreadyDecided("this document was answered already; reload the queue")
    output = session.get(OutputDocument, document.output_id)
    assert output is not None
    try:
        check_parts(output, parts, model_classes(session, output))
    except DocumentDecisionError as exc:
        raise InvalidLabel(str(exc)) from exc
    label_of = {page: part.label for part in parts for page in part.pages}
    opened = current_claim(session, prediction_id, operator_id, now)
    opened_at = opened.claimed_at if opened is not None and opened.mine else None
    each_ms = (
        int((now - as_utc(opened_at)).total_seconds() * 1000 / len(document.pages)) if opened_at else None
    )
    for page in document.pages:
        claim = current_claim(session, page.prediction_id, operator_id, now)
        if claim is not None and not claim.mine:
            raise ItemTaken(
                f"{claim.holder_name} holds page {page.page_number} of this document", claim.holder_name
            )
        label = label_of[page.page_number]
        action = _page_action(page.label, label)
        session.add(
            Review(prediction_id=page.prediction_id, operator_id=operator_id, action=action,
                   final_label=label, opened_at=opened_at, decided_at=now, duration_ms=each_ms)
        )  # fmt: skip
    answer = DocumentReview(
        output_document_id=output.id,
        operator_id=operator_id,
        action=_action(output, parts),
        parts=[{"pages": list(p.pages), "label": p.label} for p in parts],
        opened_at=opened_at,
        decided_at=now,
    )
    session.add(answer)
    try:
        session.flush()  # UNIQUE reviews and document answer: a second answer stops here
        ids = [p.prediction_id for p in document.pages]
        session.execute(delete(ReviewClaim).where(ReviewClaim.prediction_id.in_(ids)))
        for page in document.pages:
            record_reviewed(session, settings, page.prediction_id, label_of[page.page_number])
        if deliver_now:
            decide_review_document(session, settings, output.id, parts, operator_id)
        session.commit()
    except (IntegrityError, OperationalError) as exc:
        session.rollback()
        raise AlreadyDecided(
            "this document was answered by someone else meanwhile; reload the queue"
        ) from exc
    except DocsortError as exc:
        session.rollback()
        raise ReviewError(f"the document could not be routed, the answer was not saved: {exc}") from exc
    log.info("review.document_answered", output_id=output.id, parts=answer.parts, operator_id=operator_id)
    return document, answer


def take_back(session: Session, answer: DocumentReview, document_id: int) -> None:
    """Remove a whole-document answer: its pages' reviews and operator decisions, and the answer."""
    ids = list(
        session.scalars(
            select(Prediction.id)
            .join(Page, Page.id == Prediction.page_id)
            .join(Review, Review.prediction_id == Prediction.id)
            .where(
                Page.document_id == document_id,
                Page.page_number.in_([p for part in answer.parts for p in part["pages"]]),
            )
        )
    )
    session.execute(
        delete(RoutingDecision).where(
            RoutingDecision.prediction_id.in_(ids),
            RoutingDecision.origin == DecisionOrigin.operator,
            RoutingDecision.destination.is_(None),
        )
    )
    session.execute(delete(Review).where(Review.prediction_id.in_(ids)))
    session.delete(answer)
