"""Step 7, deliver: a decided document goes where its class's rule says, for the model's decisions
and the operators' alike, through one function, :func:`deliver`.

A document is written from its source file without loss (:mod:`worker.document_file`: the file itself
when it is one document, the PDF's page objects or the TIFF's frames otherwise) and copied to a
folder under the outbox; queue and webhook consumers get the path of a copy kept in the outbox
(``_queue/<name>/`` or ``_webhook/``). Delivering the same document twice leaves one file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from schema.db import session_scope
from schema.files import copy_atomic
from schema.logs import get_logger
from schema.messages import ROUTED_TASK
from schema.settings import DocsortSettings
from schema.tables import Document, OutputDocument, Page, RoutingDecision
from worker import metrics
from worker.document_file import DocumentFileError, document_suffix, is_whole_file, write_document
from worker.documents import deliverable, in_force
from worker.routing import Destination, RoutingError, RoutingRules, render_folder, safe_component

log = get_logger(__name__)

QueueSender = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class DeliveryItem:
    """One document to deliver: ``content`` is the file written for it."""

    document_id: int  # the received file
    index: int  # 1-based place among the file's documents in force
    n_documents: int
    pages: tuple[int, ...]
    label: str | None
    sha256: str
    filename: str
    content: Path

    def page_text(self) -> str:
        if self.pages and list(self.pages) == list(range(self.pages[0], self.pages[-1] + 1)):
            return f"{self.pages[0]}-{self.pages[-1]}" if len(self.pages) > 1 else str(self.pages[0])
        return ",".join(str(p) for p in self.pages)

    def target_name(self, template: str | None, when: datetime) -> str:
        stem = safe_component(Path(self.filename).stem or "document", 80)
        if template is None:
            part = f"-p{self.page_text()}" if self.n_documents > 1 else ""
            name = f"{stem}-{self.sha256[:10]}{part}"
        else:
            name = template.format(
                label=self.label or "rejected",
                date=when,
                stem=stem,
                sha=self.sha256[:10],
                index=self.index,
                pages=self.page_text(),
            )
        suffix = self.content.suffix.lower()
        ext = "." + safe_component(suffix.lstrip("."), 10) if suffix else ""
        return safe_component(name, 160) + ext

    def payload(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "index": self.index,
            "pages": list(self.pages),
            "label": self.label,
            "sha256": self.sha256,
            "filename": self.filename,
            "path": str(self.content),
        }


def celery_queue_sender(send_task: Callable[..., Any]) -> QueueSender:
    """Send a delivered document to a Celery queue as task :data:`ROUTED_TASK` (kwargs: its payload)."""

    def send(queue: str, payload: dict[str, Any]) -> None:
        send_task(ROUTED_TASK, kwargs=payload, queue=queue, serializer="json")

    return send


def _to_folder(item: DeliveryItem, destination: Destination, folder: str, root: Path, when: datetime) -> Path:
    target = render_folder(folder, item.label or "rejected", when, root) / item.target_name(
        destination.name, when
    )
    if target.exists() and target.stat().st_size == item.content.stat().st_size:
        return target  # delivered before (a redelivered task): nothing to do
    try:
        copy_atomic(item.content, target)
    except OSError as exc:
        raise RoutingError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def post_webhook(url: str, payload: dict[str, Any], attempts: int = 3, backoff_s: float = 0.5) -> None:
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            response = httpx.post(
                url, content=json.dumps(payload), timeout=10.0, headers={"content-type": "application/json"}
            )
            if response.status_code < 500:
                response.raise_for_status()
                return
            last = RoutingError(f"webhook {url} answered {response.status_code}")
        except httpx.HTTPStatusError as exc:
            raise RoutingError(f"webhook {url} refused the document: {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(backoff_s * (2**attempt))
    raise RoutingError(f"webhook {url} failed after {attempts} attempts: {last}") from last


def send_item(
    item: DeliveryItem,
    destination: Destination,
    outbox: Path,
    sender: QueueSender | None = None,
    *,
    when: datetime | None = None,
) -> str:
    """Deliver ``item`` to ``destination``; where it went (a path, ``queue:NAME`` or ``webhook:URL``)."""
    when = when or datetime.now(UTC)
    if destination.folder:
        return str(_to_folder(item, destination, destination.folder, outbox, when))
    sub = f"_queue/{destination.queue}" if destination.queue else "_webhook"
    copy = _to_folder(item, destination, sub, outbox, when)
    payload = {**item.payload(), "path": str(copy)}
    if destination.queue:
        if sender is None:
            raise RoutingError(f"queue destination {destination.queue!r} needs a broker connection")
        sender(destination.queue, payload)
        return f"queue:{destination.queue}"
    assert destination.webhook
    post_webhook(destination.webhook, payload)
    return f"webhook:{destination.webhook}"


def source_of(document: Document, first: Path | None = None) -> Path:
    """The received file as it is now: where the job found it, else where it was stored."""
    stored = Path(document.stored_path) if document.stored_path else None
    for path in (first, stored):
        if path is not None and path.is_file():
            return path
    raise RoutingError(f"document {document.id} ({document.filename}): its file is gone")


def deliver(
    session: Session,
    output: OutputDocument,
    source: Path,
    rules: RoutingRules,
    settings: DocsortSettings,
    sender: QueueSender | None,
    *,
    index: int = 1,
    n_documents: int = 1,
) -> None:
    """Write one decided document from ``source`` and deliver it by its class's rule (rejected: the
    rules' ``rejected`` destination); mark it delivered. Flushes, does not commit."""
    document = session.get(Document, output.document_id)
    assert document is not None
    page_count = document.page_count or len(output.pages)
    suffix = document_suffix(source, output.pages, page_count)
    # A whole file is delivered from the received file itself (one copy, into the destination); a part
    # of one is written first (PDF page objects, TIFF frames) and that file delivered.
    whole = is_whole_file(output.pages, page_count)
    work = (
        source
        if whole
        else settings.dir("processing") / "documents" / f"{document.sha256[:16]}-{output.id}{suffix}"
    )
    try:
        if not whole:
            write_document(source, output.pages, work, page_count=page_count)
        item = DeliveryItem(
            document_id=document.id,
            index=index,
            n_documents=n_documents,
            pages=tuple(output.pages),
            label=output.label,
            sha256=document.sha256,
            filename=document.filename or source.name,
            content=work,
        )
        rule, destination = rules.for_label(output.label)
        where = send_item(item, destination, settings.dir("outbox"), sender)
    except DocumentFileError as exc:
        raise RoutingError(str(exc)) from exc
    finally:
        if not whole:
            work.unlink(missing_ok=True)
    output.rule, output.destination, output.delivered_at = rule, where, datetime.now(UTC)
    _mark_pages(session, output)
    session.flush()
    log.info("document.delivered", document_id=document.id, pages=output.pages, rule=rule, where=where)


def _mark_pages(session: Session, output: OutputDocument) -> None:
    """Its pages' decisions (by the same origin) went where the document went: one UPDATE."""
    pages = select(Page.id).where(Page.document_id == output.document_id, Page.page_number.in_(output.pages))
    session.execute(
        update(RoutingDecision)
        .where(RoutingDecision.page_id.in_(pages), RoutingDecision.origin == output.origin)
        .values(rule=output.rule, destination=output.destination, applied_at=output.delivered_at)
        .execution_options(synchronize_session="fetch")
    )


def deliver_pending(
    sessions: sessionmaker[Session],
    files: list[tuple[int, Path | None]],
    rules: RoutingRules,
    settings: DocsortSettings,
    sender: QueueSender | None,
) -> int:
    """Deliver the decided documents of the job's files ((document id, path) each) not delivered yet (a
    task may have died between recording and delivering, an operator may just have decided), in one
    session: each document delivered is committed at once, so that no destination is ever written twice
    (a crash between writing a file and committing would write it again). A delivery that fails is noted
    on its document and left pending; how many are left."""
    left = 0
    with session_scope(sessions) as session:
        for document_id, path in files:
            left += _deliver_file(session, document_id, path, rules, settings, sender)
    return left


def _deliver_file(
    session: Session,
    document_id: int,
    path: Path | None,
    rules: RoutingRules,
    settings: DocsortSettings,
    sender: QueueSender | None,
) -> int:
    forced = in_force(session, document_id)  # in page order
    pending = [o for o in forced if deliverable(o)]
    if not pending:
        return 0
    document = session.get(Document, document_id)
    assert document is not None
    try:
        source = source_of(document, path)
    except RoutingError as exc:
        for output in pending:
            _note_failure(output, str(exc))
        return len(pending)
    left = 0
    for output in pending:
        try:
            deliver(
                session,
                output,
                source,
                rules,
                settings,
                sender,
                index=forced.index(output) + 1,
                n_documents=len(forced),
            )
        except RoutingError as exc:
            _note_failure(output, str(exc))
            left += 1
            continue
        session.commit()  # one document delivered is one document recorded as delivered
    return left


def _note_failure(output: OutputDocument, error: str) -> None:
    metrics.error("routing")
    base = (output.reason or "").split("; delivery failed: ")[0]
    output.reason = f"{base}; delivery failed: {error}".lstrip("; ")  # the latest attempt's error
    log.error("document.delivery_failed", document_id=output.document_id, output_id=output.id, error=error)
