"""Step 6 of a job, record: pages, predictions and routing decisions, each written once.

The file's row (``documents``) was written by the ingest door that received it. A page is keyed by its
file and page number; a prediction by page and model name/version;
a model decision by prediction. Rows are inserted with ``ON CONFLICT DO NOTHING`` and read back, so a
redelivered task, or two workers racing on the same content, find the rows instead of adding more.
Functions take the session explicitly and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from schema.db import insert_ignore, insert_ignore_many, session_scope
from schema.enums import DecisionKind, DecisionOrigin, DocumentState, PageRole
from schema.errors import DocsortError
from schema.tables import Document, OutputDocument, Page, Prediction, RoutingDecision, utcnow
from worker.assemble import Assembly
from worker.context import JobFile
from worker.decide import Decision
from worker.decode import DecodedFile
from worker.documents import has_model_documents
from worker.explain import Explanation
from worker.imaging import PreparedPage
from worker.infer import PageScores
from worker.inference import LoadedModel

FINISHED = (DocumentState.done, DocumentState.failed)


class RecordError(DocsortError):
    """A row the pipeline needs is missing or inconsistent."""


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


@dataclass
class FileRecord:
    """What the record step writes for one file: its pages, their scores and decisions, its documents."""

    job_file: JobFile
    decoded: DecodedFile
    scores: list[PageScores]
    page_decisions: list[Decision]
    assembly: Assembly
    explained: dict[int, Explanation]


def record_files(
    sessions: sessionmaker[Session], files: list[FileRecord], model: LoadedModel, worker_name: str
) -> list[list[DecisionKind]]:
    """Step 6: the job's files recorded in one transaction (bookkeeping per job, not per file), each
    kind of row of a file in one statement: its pages (with their role), the model's prediction of each
    page read, each content page's decision (its document's), and the file's output documents. Per file,
    the decision kinds of its content pages (empty when another worker finished the file meanwhile)."""
    if not files:
        return []
    with session_scope(sessions) as session:
        ids = [f.job_file.document_id for f in files]
        documents = {d.id: d for d in session.scalars(select(Document).where(Document.id.in_(ids)))}
        kinds = [
            _record_file(session, documents.get(f.job_file.document_id), f, model, worker_name) for f in files
        ]
    for record, found in zip(files, kinds, strict=True):
        record.job_file.finished = record.job_file.finished or found is not None
    return [found or [] for found in kinds]


def _record_file(
    session: Session, document: Document | None, record: FileRecord, model: LoadedModel, worker_name: str
) -> list[DecisionKind] | None:
    """One file's rows in ``session``; None when its document is gone or already finished."""
    if document is None or is_finished(document):
        return None
    document_id, decoded, assembly = document.id, record.decoded, record.assembly
    document.page_count = len(decoded.pages)
    document.media_type = decoded.media_type
    pages = _record_pages(session, document_id, decoded, assembly, record.explained)
    read = [
        (p, s, d)
        for p, s, d in zip(decoded.pages, record.scores, record.page_decisions, strict=True)
        if not p.error
    ]
    predictions = _record_predictions(session, pages, read, model, worker_name)
    kinds = _record_decisions(session, document_id, decoded, pages, predictions, assembly, record.explained)
    if not has_model_documents(session, document_id):
        _add_documents(session, document_id, assembly, model)
    document.state = DocumentState.done
    document.error = None
    document.finished_at = utcnow()
    return kinds


def _record_pages(
    session: Session,
    document_id: int,
    decoded: DecodedFile,
    assembly: Assembly,
    explained: dict[int, Explanation],
) -> dict[int, Page]:
    rows = [
        {
            "document_id": document_id,
            "page_number": p.number,
            "width": p.width,
            "height": p.height,
            "role": assembly.dropped.get(p.number, PageRole.content),
            "image_path": str(explained[p.number].image_path) if p.number in explained else None,
        }
        for p in decoded.pages
    ]
    insert_ignore_many(session, Page, rows, ["document_id", "page_number"])
    found = session.scalars(select(Page).where(Page.document_id == document_id))
    return {page.page_number: page for page in found}


def _record_predictions(
    session: Session,
    pages: dict[int, Page],
    read: list[tuple[PreparedPage, PageScores, Decision]],
    model: LoadedModel,
    worker_name: str,
) -> dict[int, Prediction]:
    now = utcnow()
    rows = [
        {
            "page_id": pages[page.number].id,
            "model_name": model.name,
            "model_version": model.version,
            "label": decision.label,
            "confidence": decision.confidence,
            "margin": decision.margin,
            "scores": decision.scores,
            "latency_ms": page_scores.latency_ms,
            "worker": worker_name[:200],
            "created_at": now,
        }
        for page, page_scores, decision in read
    ]
    insert_ignore_many(session, Prediction, rows, ["page_id", "model_name", "model_version"])
    found = session.scalars(
        select(Prediction).where(
            Prediction.page_id.in_([pages[p.number].id for p, _, _ in read]),
            Prediction.model_name == model.name,
            Prediction.model_version == model.version,
        )
    )
    by_page = {prediction.page_id: prediction for prediction in found}
    return {number: by_page[page.id] for number, page in pages.items() if page.id in by_page}


def _record_decisions(
    session: Session,
    document_id: int,
    decoded: DecodedFile,
    pages: dict[int, Page],
    predictions: dict[int, Prediction],
    assembly: Assembly,
    explained: dict[int, Explanation],
) -> list[DecisionKind]:
    """Each content page's decision (its document's); a page that could not be read gets a failed one."""
    kinds: list[DecisionKind] = []
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for page in decoded.pages:
        planned = assembly.document_of(page.number)
        if page.error is not None:
            _record_unreadable_page(session, document_id, pages[page.number], page.error)
            kinds.append(DecisionKind.failed)
            continue
        if planned is None:
            continue  # a separator sheet or a blank page: not part of any document
        explanation = explained.get(page.number)
        cam = explanation.cam_path if explanation and planned.kind == DecisionKind.review else None
        rows.append(
            {
                "document_id": document_id,
                "page_id": pages[page.number].id,
                "prediction_id": predictions[page.number].id,
                "origin": DecisionOrigin.model,
                "kind": planned.kind,
                "label": planned.decision.label,
                "reason": planned.reason,
                "cam_path": str(cam) if cam else None,
                "decided_at": now,
            }
        )
        kinds.append(planned.kind)
    insert_ignore_many(session, RoutingDecision, rows, ["prediction_id", "origin"])
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
