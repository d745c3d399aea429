"""Audited auto-routing: a share of the documents the model routes automatically is also put to an
operator, so that the live accuracy of automatic routing can be measured (:mod:`worker.live_accuracy`).

The choice is a pure function of the document: ``sha256(file sha256, model name/version, pages)``
read as a number in [0, 1) against the rate (``DOCSORT_AUDIT_RATE``). A redelivered or retried job
chooses the same documents, a second worker chooses the same ones, and no one can steer which
documents are audited without changing them. An audited document is delivered as usual; its
:class:`~schema.tables.Audit` row waits for an operator's answer (``review.audits``).

The runner's hook is :func:`audit_file`, called after a file is recorded: it records the file's
audits and saves the audited pages' images and CAM overlays as a review page's are saved, so an
operator sees them the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.db import insert_ignore, session_scope
from schema.enums import DecisionKind, DecisionOrigin
from schema.logs import get_logger
from schema.tables import Audit, Document, OutputDocument, Page, Prediction, RoutingDecision, utcnow
from worker.context import JobFile, WorkerContext
from worker.decode import DecodedFile
from worker.explain import Explanation, explain_file
from worker.infer import PageScores
from worker.inference import LoadedModel

log = get_logger(__name__)


def audit_draw(sha256: str, model_name: str, model_version: str, pages: Sequence[int]) -> float:
    """A number in [0, 1), fixed by the file, the model version and the document's pages."""
    key = f"{sha256}\n{model_name}/{model_version}\n{','.join(str(p) for p in pages)}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def is_audited(sha256: str, model_name: str, model_version: str, pages: Sequence[int], rate: float) -> bool:
    return rate > 0 and audit_draw(sha256, model_name, model_version, pages) < rate


def _candidates(session: Session, document_id: int) -> list[OutputDocument]:
    """The model's documents of a file that it routed automatically to a class."""
    return list(
        session.scalars(
            select(OutputDocument)
            .where(
                OutputDocument.document_id == document_id,
                OutputDocument.origin == DecisionOrigin.model,
                OutputDocument.kind == DecisionKind.auto,
                OutputDocument.label.is_not(None),
                OutputDocument.model_version.is_not(None),
            )
            .order_by(OutputDocument.seq)
        )
    )


def choose_audits(session: Session, document_id: int, rate: float) -> list[Audit]:
    """Record an audit for each automatically routed document of a file that the draw picks; the
    file's audits (those recorded before included). Idempotent; flushes, does not commit."""
    document = session.get(Document, document_id)
    if document is None or rate <= 0:
        return []
    for output in _candidates(session, document_id):
        assert output.model_name is not None and output.model_version is not None and output.label
        if not is_audited(document.sha256, output.model_name, output.model_version, output.pages, rate):
            continue
        values = {
            "output_document_id": output.id,
            "document_id": document_id,
            "model_name": output.model_name,
            "model_version": output.model_version,
            "label": output.label,
            "confidence": output.confidence,
            "chosen_at": utcnow(),
        }
        insert_ignore(session, Audit, values, ["output_document_id"])
    session.flush()
    return list(session.scalars(select(Audit).where(Audit.document_id == document_id).order_by(Audit.id)))


def _audited_pages(
    session: Session, audits: list[Audit], decoded: DecodedFile, scores: list[PageScores]
) -> dict[int, PageScores]:
    """The audited pages still without an image, with their scores."""
    by_number = {p.number: s for p, s in zip(decoded.pages, scores, strict=True) if p.error is None}
    wanted: dict[int, PageScores] = {}
    for audit in audits:
        output = session.get(OutputDocument, audit.output_document_id)
        assert output is not None
        for number in output.pages:
            page = session.scalar(
                select(Page).where(Page.document_id == audit.document_id, Page.page_number == number)
            )
            if page is not None and page.image_path is None and number in by_number:
                wanted[number] = by_number[number]
    return wanted


def _remember_images(session: Session, document_id: int, model: LoadedModel, saved: dict[int, Explanation]):
    for number, explanation in saved.items():
        page = session.scalar(select(Page).where(Page.document_id == document_id, Page.page_number == number))
        if page is None:
            continue
        page.image_path = page.image_path or str(explanation.image_path)
        decision = session.scalar(
            select(RoutingDecision)
            .join(Prediction, Prediction.id == RoutingDecision.prediction_id)
            .where(
                RoutingDecision.page_id == page.id,
                RoutingDecision.origin == DecisionOrigin.model,
                Prediction.model_name == model.name,
                Prediction.model_version == model.version,
            )
        )
        if decision is not None and decision.cam_path is None and explanation.cam_path is not None:
            decision.cam_path = str(explanation.cam_path)


def audit_file(
    ctx: WorkerContext,
    job_file: JobFile,
    decoded: DecodedFile,
    scores: list[PageScores],
    model: LoadedModel,
) -> list[Audit]:
    """The runner's hook after :func:`worker.record.record_files`: choose the file's audits
    (``DOCSORT_AUDIT_RATE``) and save their pages' images and CAM overlays for the operator."""
    rate = ctx.settings.audit_rate
    if rate <= 0:
        return []
    with session_scope(ctx.sessions) as session:
        audits = choose_audits(session, job_file.document_id, rate)
        pages = _audited_pages(session, audits, decoded, scores)
    if not audits:
        return audits
    saved = explain_file(
        job_file.path,
        job_file.sha256,
        pages,
        model,
        ctx.settings.dir("review"),
        ctx.settings.review_max_side,
        ctx.settings.decode_limits(),
    )
    if saved:
        with session_scope(ctx.sessions) as session:
            _remember_images(session, job_file.document_id, model, saved)
    log.info("audit.chosen", document_id=job_file.document_id, audits=len(audits), pages=sorted(pages))
    return audits
