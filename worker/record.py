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
from worker.documents import has_model_documents, with_model_documents
from worker.explain import Explanation
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
    kind of row of the whole job in one statement: the pages of every file (with their role), the
    model's prediction of each page read, each content page's decision (its document's), and the
    files' output documents. Per file, the decision kinds of its content pages (empty when another
    worker finished the file meanwhile)."""
    if not files:
        return []
    with session_scope(sessions) as session:
        ids = [f.job_file.document_id for f in files]
        documents = {d.id: d for d in session.scalars(select(Document).where(Document.id.in_(ids)))}
        todo = [
            (f, documents[f.job_file.document_id])
            for f in files
            if f.job_file.document_id in documents and not is_finished(documents[f.job_file.document_id])
        ]
        kinds = _record_job(session, todo, model, worker_name)
    for record in files:
        found = kinds.get(record.job_file.document_id)
        record.job_file.finished = record.job_file.finished or found is not None
    return [kinds.get(f.job_file.document_id) or [] for f in files]


def _record_job(
    session: Session, todo: list[tuple[FileRecord, Document]], model: LoadedModel, worker_name: str
) -> dict[int, list[DecisionKind]]:
    """The rows of the files not finished yet, kind by kind for the whole job; per file, its kinds."""
    if not todo:
        return {}
    ids = [document.id for _, document in todo]
    with session.no_autoflush:  # the documents' changes go out in one flush, after the rows are read
        for record, document in todo:
            document.page_count = len(record.decoded.pages)
            document.media_type = record.decoded.media_type
        pages = _record_pages(session, todo)
        predictions = _record_predictions(session, todo, pages, model, worker_name)
        kinds = _record_decisions(session, todo, pages, predictions)
        have_documents = with_model_documents(session, ids)
    for record, document in todo:
        if document.id not in have_documents:
            _add_documents(session, document.id, record.assembly, model)
        document.state = DocumentState.done
        document.error = None
        document.finished_at = utcnow()
    session.flush()
    return kinds


def _record_pages(session: Session, todo: list[tuple[FileRecord, Document]]) -> dict[tuple[int, int], Page]:
    """Every file's pages, inserted in one statement and read back in one; keyed (file, page number)."""
    rows = [
        {
            "document_id": document.id,
            "page_number": p.number,
            "width": p.width,
            "height": p.height,
            "role": record.assembly.dropped.get(p.number, PageRole.content),
            "image_path": str(record.explained[p.number].image_path)
            if p.number in record.explained
            else None,
        }
        for record, document in todo
        for p in record.decoded.pages
    ]
    insert_ignore_many(session, Page, rows, ["document_id", "page_number"])
    found = session.scalars(select(Page).where(Page.document_id.in_([d.id for _, d in todo])))
    return {(page.document_id, page.page_number): page for page in found}


def _record_predictions(
    session: Session,
    todo: list[tuple[FileRecord, Document]],
    pages: dict[tuple[int, int], Page],
    model: LoadedModel,
    worker_name: str,
) -> dict[int, Prediction]:
    """The model's prediction of each page read, in one statement; read back by page id."""
    now = utcnow()
    rows = [
        {
            "page_id": pages[(document.id, page.number)].id,
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
        for record, document in todo
        for page, page_scores, decision in zip(
            record.decoded.pages, record.scores, record.page_decisions, strict=True
        )
        if not page.error
    ]
    insert_ignore_many(session, Prediction, rows, ["page_id", "model_name", "model_version"])
    found = session.scalars(
        select(Prediction)
        .join(Page, Page.id == Prediction.page_id)
        .where(
            Page.document_id.in_([d.id for _, d in todo]),
            Prediction.model_name == model.name,
            Prediction.model_version == model.version,
        )
    )
    return {prediction.page_id: prediction for prediction in found}


def _record_decisions(
    session: Session,
    todo: list[tuple[FileRecord, Document]],
    pages: dict[tuple[int, int], Page],
    predictions: dict[int, Prediction],
) -> dict[int, list[DecisionKind]]:
    """Each content page's decision (its document's), all in one statement; a page that could not be
    read gets a failed one. Per file, its decision kinds."""
    kinds: dict[int, list[DecisionKind]] = {}
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for record, document in todo:
        document_id, assembly, explained = document.id, record.assembly, record.explained
        found = kinds.setdefault(document_id, [])
        for page in record.decoded.pages:
            planned = assembly.document_of(page.number)
            row = pages[(document_id, page.number)]
            if page.error is not None:
                _record_unreadable_page(session, document_id, row, page.error)
                found.append(DecisionKind.failed)
                continue
            if planned is None:
                continue  # a separator sheet or a blank page: not part of any document
            explanation = explained.get(page.number)
            cam = explanation.cam_path if explanation and planned.kind == DecisionKind.review else None
            rows.append(
                {
                    "document_id": document_id,
                    "page_id": row.id,
                    "prediction_id": predictions[row.id].id,
                    "origin": DecisionOrigin.model,
                    "kind": planned.kind,
                    "label": planned.decision.label,
                    "reason": planned.reason,
                    "cam_path": str(cam) if cam else None,
                    "decided_at": now,
                }
            )
            found.append(planned.kind)
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
