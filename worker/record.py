"""Step 6 of a job, record: pages, predictions and routing decisions, each written once.

The file's row (``documents``) was written by the ingest door that received it. A page is keyed by its
file and page number; a prediction by page and model name/version;
a model decision by prediction. Rows are inserted with ``ON CONFLICT DO NOTHING`` and read back, so a
redelivered task, or two workers racing on the same content, find the rows instead of adding more.
Functions take the session explicitly and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from schema.db import insert_ignore, session_scope
from schema.enums import DecisionKind, DecisionOrigin, DocumentState, PageRole
from schema.errors import DocsortError
from schema.tables import Document, OutputDocument, Page, Prediction, RoutingDecision, utcnow
from worker.assemble import Assembly
from worker.context import JobFile
from worker.decide import Decision
from worker.decode import DecodedFile
from worker.documents import has_model_documents
from worker.explain import Explanation
from worker.infer import PageScores
from worker.inference import LoadedModel

FINISHED = (DocumentState.done, DocumentState.failed)


class RecordError(DocsortError):
    """A row the pipeline needs is missing or inconsistent."""


def ensure_page(session: Session, document_id: int, number: int, width: int, height: int) -> Page:
    values = {"document_id": document_id, "page_number": number, "width": width, "height": height}
    insert_ignore(session, Page, values, ["document_id", "page_number"])
    session.flush()
    page = session.scalar(select(Page).where(Page.document_id == document_id, Page.page_number == number))
    if page is None:  # pragma: no cover
        raise RecordError(f"page {number} of document {document_id} vanished after insert")
    return page


def find_prediction(session: Session, page_id: int, model_name: str, model_version: str) -> Prediction | None:
    return session.scalar(
        select(Prediction).where(
            Prediction.page_id == page_id,
            Prediction.model_name == model_name,
            Prediction.model_version == model_version,
        )
    )


def ensure_prediction(
    session: Session,
    page: Page,
    *,
    model_name: str,
    model_version: str,
    decision: Decision,
    latency_ms: float,
    worker: str,
) -> tuple[Prediction, bool]:
    """The page's prediction by this model version, recorded now if it was not; (prediction, created)."""
    found = find_prediction(session, page.id, model_name, model_version)
    if found is not None:
        return found, False
    values = {
        "page_id": page.id,
        "model_name": model_name,
        "model_version": model_version,
        "label": decision.label,
        "confidence": decision.confidence,
        "margin": decision.margin,
        "scores": decision.scores,
        "latency_ms": latency_ms,
        "worker": worker[:200],
        "created_at": utcnow(),
    }
    insert_ignore(session, Prediction, values, ["page_id", "model_name", "model_version"])
    session.flush()
    found = find_prediction(session, page.id, model_name, model_version)
    if found is None:  # pragma: no cover
        raise RecordError(f"prediction for page {page.id} vanished after insert")
    return found, True


def decision_for(session: Session, prediction_id: int, origin: DecisionOrigin) -> RoutingDecision | None:
    return session.scalar(
        select(RoutingDecision).where(
            RoutingDecision.prediction_id == prediction_id, RoutingDecision.origin == origin
        )
    )


def ensure_decision(session: Session, values: dict[str, Any]) -> tuple[RoutingDecision, bool]:
    """The decision of (prediction, origin), recorded from ``values`` if there is none; (row, created)."""
    prediction_id, origin = values["prediction_id"], values["origin"]
    found = decision_for(session, prediction_id, origin)
    if found is not None:
        return found, False
    insert_ignore(session, RoutingDecision, {"decided_at": utcnow(), **values}, ["prediction_id", "origin"])
    session.flush()
    found = decision_for(session, prediction_id, origin)
    if found is None:  # pragma: no cover
        raise RecordError(f"decision for prediction {prediction_id} vanished after insert")
    return found, True


def failure_of(session: Session, document_id: int) -> RoutingDecision | None:
    return session.scalar(
        select(RoutingDecision).where(
            RoutingDecision.document_id == document_id,
            RoutingDecision.kind == DecisionKind.failed,
            RoutingDecision.prediction_id.is_(None),
        )
    )


def record_failure(session: Session, document: Document, reason: str) -> RoutingDecision:
    """Mark a document failed with a reason a person understands; once, however often called."""
    document.state = DocumentState.failed
    document.error = reason
    document.finished_at = document.finished_at or utcnow()
    found = failure_of(session, document.id)
    if found is not None:
        return found
    if not has_model_documents(session, document.id):
        session.add(
            OutputDocument(
                document_id=document.id,
                origin=DecisionOrigin.model,
                generation=0,
                seq=1,
                pages=[],
                kind=DecisionKind.failed,
                reason=reason,
            )
        )
    decision = RoutingDecision(
        document_id=document.id,
        origin=DecisionOrigin.model,
        kind=DecisionKind.failed,
        reason=reason,
        decided_at=utcnow(),
    )
    session.add(decision)
    session.flush()
    return decision


def is_finished(document: Document) -> bool:
    return document.state in FINISHED


def record_file(
    sessions: sessionmaker[Session],
    job_file: JobFile,
    decoded: DecodedFile,
    scores: list[PageScores],
    page_decisions: list[Decision],
    assembly: Assembly,
    explained: dict[int, Explanation],
    model: LoadedModel,
    worker_name: str,
) -> list[DecisionKind]:
    """Record one file in one transaction: its pages (with their role), the model's prediction of each,
    each content page's decision (its document's), and the file's output documents. The decision kinds
    of its content pages (empty when another worker finished the file meanwhile)."""
    kinds: list[DecisionKind] = []
    with session_scope(sessions) as session:
        document = session.get(Document, job_file.document_id)
        if document is None or is_finished(document):
            return kinds
        document.page_count = len(decoded.pages)
        document.media_type = decoded.media_type
        for page, page_scores, own in zip(decoded.pages, scores, page_decisions, strict=True):
            role = assembly.dropped.get(page.number, PageRole.content)
            row = ensure_page(session, job_file.document_id, page.number, page.width, page.height)
            row.role = role
            if page.error is not None:  # no prediction: the page was not read
                _record_unreadable_page(session, job_file.document_id, row, page.error)
                kinds.append(DecisionKind.failed)
                continue
            prediction, _ = ensure_prediction(
                session,
                row,
                model_name=model.name,
                model_version=model.version,
                decision=own,
                latency_ms=page_scores.latency_ms,
                worker=worker_name,
            )
            planned = assembly.document_of(page.number)
            if planned is None:
                continue  # a separator sheet or a blank page: not part of any document
            values: dict[str, Any] = {
                "document_id": job_file.document_id,
                "page_id": row.id,
                "prediction_id": prediction.id,
                "origin": DecisionOrigin.model,
                "kind": planned.kind,
                "label": planned.decision.label,
                "reason": planned.reason,
            }
            explanation = explained.get(page.number)
            if planned.kind == DecisionKind.review and explanation is not None:
                row.image_path = str(explanation.image_path)
                values["cam_path"] = str(explanation.cam_path) if explanation.cam_path else None
            recorded, _ = ensure_decision(session, values)
            kinds.append(recorded.kind)
        if not has_model_documents(session, job_file.document_id):
            _add_documents(session, job_file.document_id, assembly, model)
        document.state = DocumentState.done
        document.error = None
        document.finished_at = utcnow()
    job_file.finished = True
    return kinds


def _record_unreadable_page(session: Session, document_id: int, page: Page, reason: str) -> None:
    found = session.scalar(
        select(RoutingDecision.id).where(
            RoutingDecision.page_id == page.id, RoutingDecision.kind == DecisionKind.failed
        )
    )
    if found is None:
        session.add(
            RoutingDecision(
                document_id=document_id,
                page_id=page.id,
                origin=DecisionOrigin.model,
                kind=DecisionKind.failed,
                reason=reason,
                decided_at=utcnow(),
            )
        )


def _add_documents(session: Session, document_id: int, assembly: Assembly, model: LoadedModel) -> None:
    for seq, planned in enumerate(assembly.documents, start=1):
        decision = planned.decision
        session.add(
            OutputDocument(
                document_id=document_id,
                origin=DecisionOrigin.model,
                generation=0,
                seq=seq,
                pages=list(planned.pages),
                kind=decision.kind,
                label=decision.label,
                confidence=decision.confidence,
                margin=decision.margin,
                scores=decision.scores,
                reason=planned.reason,
                starts_by=planned.starts_by,
                model_name=model.name,
                model_version=model.version,
            )
        )
    session.flush()


def fail_file(sessions: sessionmaker[Session], job_file: JobFile, reason: str) -> bool:
    """Record a file as failed (a ``failed`` decision and state), once; False if it was already done."""
    with session_scope(sessions) as session:
        document = session.get(Document, job_file.document_id)
        if document is None or document.state == DocumentState.done:
            return False
        record_failure(session, document, reason)
    job_file.finished = True
    return True


def record_operator_decision(session: Session, prediction: Prediction, label: str | None) -> RoutingDecision:
    """The operator's decision on a reviewed page (``label`` None: rejected as unreadable), recorded once
    and not yet delivered; :func:`worker.delivery.deliver` delivers it. Flushes, does not commit."""
    existing = decision_for(session, prediction.id, DecisionOrigin.operator)
    if existing is not None:
        return existing
    confirmed = label is not None
    decision, _ = ensure_decision(
        session,
        {
            "document_id": prediction.page.document_id,
            "page_id": prediction.page_id,
            "prediction_id": prediction.id,
            "origin": DecisionOrigin.operator,
            "kind": DecisionKind.auto if confirmed else DecisionKind.failed,
            "label": label,
            "reason": "confirmed or relabelled by an operator" if confirmed else "rejected by an operator",
        },
    )
    return decision
