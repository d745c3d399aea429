"""Operator decisions on documents under review, delivered by the worker's one delivery function.

An operator decides a document under review either whole (:func:`decide_review_document`: its class,
or its split into several documents, each with a class or rejected) or page by page on the review
page (:func:`deliver_reviewed`, or :func:`record_reviewed` now and :func:`deliver_if_answered` once
the operator's undo window has passed, :mod:`review.undo`): when the last page of a document under
review is answered, its pages become documents (runs of consecutive pages with the same answer).
Either way the operator's documents replace the model's one and each is written from the received
file and delivered once, by the same rules and code as the model's (:func:`worker.delivery.deliver`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from review.errors import ItemNotFound, ReviewError
from schema.enums import DecisionOrigin
from schema.logs import get_logger
from schema.settings import DocsortSettings
from schema.tables import Document, DocumentReview, OutputDocument, Page, Prediction, Review, RoutingDecision
from worker.delivery import QueueSender, celery_queue_sender, deliver, source_of
from worker.documents import (
    DocumentDecisionError,
    Part,
    decide_document,
    parts_from_pages,
    review_document_of_page,
)
from worker.documents import in_force as documents_in_force
from worker.record import decision_for, record_operator_decision
from worker.routing import RoutingRules

log = get_logger(__name__)


@lru_cache(maxsize=4)
def _queue_sender(broker_url: str) -> QueueSender:
    """Queue destinations of reviewed documents: a small Celery client of the broker (JSON only)."""
    client = Celery("docsort-review", broker=broker_url, set_as_current=False)
    client.conf.update(
        task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True
    )
    return celery_queue_sender(client.send_task)


def deliver_documents(session: Session, settings: DocsortSettings, made: Sequence[OutputDocument]) -> None:
    """Write and deliver the operator's new documents of one file. Flushes, does not commit."""
    if not made:
        return
    document = session.get(Document, made[0].document_id)
    assert document is not None
    source = source_of(document)
    rules = RoutingRules.load(settings.routes_file)
    current = documents_in_force(session, document.id)
    for output in made:
        deliver(
            session,
            output,
            source,
            rules,
            settings,
            _queue_sender(settings.broker_url),
            index=current.index(output) + 1,
            n_documents=len(current),
        )


def model_classes(session: Session, output: OutputDocument) -> list[str]:
    return list(output.scores or {}) or [
        str(n)
        for n in (
            session.scalar(
                select(Prediction.scores)
                .join(Page, Page.id == Prediction.page_id)
                .where(Page.document_id == output.document_id)
                .limit(1)
            )
            or {}
        )
    ]


def decide_review_document(
    session: Session,
    settings: DocsortSettings,
    output_id: int,
    parts: Sequence[Part],
    operator_id: int | None,
) -> list[OutputDocument]:
    """Replace a document under review by the operator's documents and deliver them. Flushes."""
    output = session.get(OutputDocument, output_id)
    if output is None:
        raise ItemNotFound(f"no document waits for review under id {output_id}")
    try:
        made = decide_document(
            session, output, parts, operator_id=operator_id, class_names=model_classes(session, output)
        )
    except DocumentDecisionError as exc:
        raise ReviewError(str(exc)) from exc
    deliver_documents(session, settings, made)
    log.info("review.document_decided", output_id=output_id, parts=[list(p.pages) for p in parts])
    return made


def answer_of(session: Session, output_id: int) -> DocumentReview | None:
    """The operator's answer on a whole document under review, if it was answered whole."""
    return session.scalar(select(DocumentReview).where(DocumentReview.output_document_id == output_id))


def parts_of(answer: DocumentReview) -> list[Part]:
    return [Part(tuple(int(p) for p in part["pages"]), part["label"]) for part in answer.parts]


def _answers(session: Session, output: OutputDocument) -> tuple[list[str | None], int | None] | None:
    """Each page's operator answer (None: rejected) and the operator of the last one, or None while a
    page is unanswered."""
    labels: list[str | None] = []
    last: tuple[datetime, int] | None = None
    for number in output.pages:
        prediction = session.scalar(
            select(Prediction)
            .join(Page, Page.id == Prediction.page_id)
            .where(
                Page.document_id == output.document_id,
                Page.page_number == number,
                Prediction.model_name == output.model_name,  # not a version running in shadow
                Prediction.model_version == output.model_version,
            )
            .order_by(Prediction.id.desc())
            .limit(1)
        )
        decision = decision_for(session, prediction.id, DecisionOrigin.operator) if prediction else None
        if prediction is None or decision is None:
            return None
        labels.append(decision.label)
        review = session.scalar(select(Review).where(Review.prediction_id == prediction.id))
        if review is not None and (last is None or review.decided_at >= last[0]):
            last = (review.decided_at, review.operator_id)
    return labels, (last[1] if last else None)


def deliver_if_answered(session: Session, settings: DocsortSettings, output: OutputDocument) -> bool:
    """Once every page of a document under review is answered, its pages become the operator's
    documents (runs of pages with one answer, or the parts of a whole-document answer) and are
    delivered. True when it was. Flushes."""
    whole = answer_of(session, output.id)
    if whole is not None:
        decide_review_document(session, settings, output.id, parts_of(whole), whole.operator_id)
        return True
    answers = _answers(session, output)
    if answers is None:
        return False
    labels, operator_id = answers
    decide_review_document(session, settings, output.id, parts_from_pages(output.pages, labels), operator_id)
    return True


def record_reviewed(
    session: Session, settings: DocsortSettings, prediction_id: int, label: str | None
) -> RoutingDecision:
    """Record an operator's answer on one page of a document under review, not delivered yet
    (:func:`deliver_if_answered` delivers its document). Idempotent. Flushes, does not commit."""
    prediction = session.get(Prediction, prediction_id)
    if prediction is None:
        raise ItemNotFound(f"no page waits for review under id {prediction_id}")
    return record_operator_decision(session, prediction, label)


def deliver_reviewed(
    session: Session, settings: DocsortSettings, prediction_id: int, label: str | None
) -> RoutingDecision:
    """Record an operator's answer on one page of a document under review; once every page of that
    document is answered, its pages become the operator's documents and are delivered at once.
    Idempotent. Flushes, does not commit."""
    decision = record_reviewed(session, settings, prediction_id, label)
    prediction = session.get(Prediction, prediction_id)
    assert prediction is not None
    page = prediction.page
    output = review_document_of_page(session, page.document_id, page.page_number)
    if output is not None:  # else its document was decided already
        deliver_if_answered(session, settings, output)
    return decision
