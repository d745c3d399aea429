"""Step 7, deliver: a decided page goes where its label's rule says, for the model's decisions and the
operators' alike, through one function, :func:`deliver`.

A page's content is the original file for a one-page file, and the page rendered as PNG for a page of
a multi-page one. Queue and webhook consumers get a path that lasts: the page is first copied into the
outbox (``_queue/<name>/`` or ``_webhook/``) and that copy's path is what they receive. Delivering the
same page twice leaves one file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from schema.db import session_scope
from schema.enums import DecisionKind, DecisionOrigin, DocumentState
from schema.files import copy_atomic
from schema.logs import get_logger
from schema.messages import ROUTED_TASK
from schema.settings import DocsortSettings
from schema.tables import Document, Page, RoutingDecision
from worker import metrics
from worker.cam import save_png
from worker.imaging import UnreadableImage, iter_pages
from worker.routing import Destination, RoutingError, RoutingRules, render_folder, safe_component

log = get_logger(__name__)

QueueSender = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class RouteItem:
    """One page to deliver. ``content`` is the file to copy (the original for a one-page file,
    the rendered page for a page of a multi-page one)."""

    document_id: int
    page_number: int
    page_count: int
    label: str | None
    sha256: str
    filename: str
    content: Path

    def target_name(self) -> str:
        stem = safe_component(Path(self.filename).stem or "page", 80)
        suffix = self.content.suffix.lower() or Path(self.filename).suffix.lower()
        page = f"-p{self.page_number}" if self.page_count > 1 else ""
        ext = "." + safe_component(suffix.lstrip("."), 10) if suffix else ""
        return f"{stem}-{self.sha256[:10]}{page}{ext}"

    def payload(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "page": self.page_number,
            "label": self.label,
            "sha256": self.sha256,
            "filename": self.filename,
            "path": str(self.content),
        }


def celery_queue_sender(send_task: Callable[..., Any]) -> QueueSender:
    """Send a delivered page to a Celery queue as task :data:`ROUTED_TASK` (kwargs: the page payload)."""

    def send(queue: str, payload: dict[str, Any]) -> None:
        send_task(ROUTED_TASK, kwargs=payload, queue=queue, serializer="json")

    return send


def _to_folder(item: RouteItem, template: str, root: Path, when: datetime) -> Path:
    folder = render_folder(template, item.label or "rejected", when, root)
    target = folder / item.target_name()
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
            raise RoutingError(f"webhook {url} refused the page: {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(backoff_s * (2**attempt))
    raise RoutingError(f"webhook {url} failed after {attempts} attempts: {last}") from last


def send_item(
    item: RouteItem,
    destination: Destination,
    outbox: Path,
    sender: QueueSender | None = None,
    *,
    when: datetime | None = None,
) -> str:
    """Deliver ``item`` to ``destination``; where it went (a path, ``queue:NAME`` or ``webhook:URL``).
    Queue and webhook consumers receive the path of a copy kept in the outbox."""
    when = when or datetime.now(UTC)
    if destination.folder:
        return str(_to_folder(item, destination.folder, outbox, when))
    sub = f"_queue/{destination.queue}" if destination.queue else "_webhook"
    copy = _to_folder(item, sub, outbox, when)
    payload = {**item.payload(), "path": str(copy)}
    if destination.queue:
        if sender is None:
            raise RoutingError(f"queue destination {destination.queue!r} needs a broker connection")
        sender(destination.queue, payload)
        return f"queue:{destination.queue}"
    assert destination.webhook
    post_webhook(destination.webhook, payload)
    return f"webhook:{destination.webhook}"


def render_pages(source: Path, numbers: set[int], out_dir: Path, sha256: str) -> dict[int, Path]:
    """Render the wanted pages of a multi-page file as PNGs in ``out_dir``; {page number: path}."""
    found: dict[int, Path] = {}
    if not numbers:
        return found
    for page in iter_pages(source):
        if page.number in numbers:
            found[page.number] = save_png(page.image, out_dir / f"{sha256[:16]}-p{page.number}.png")
        if len(found) == len(numbers):
            break
    return found


@contextmanager
def page_contents(
    document: Document, pages: list[Page], settings: DocsortSettings, first: Path | None = None
) -> Iterator[dict[int, Path]]:
    """{page number: the file to deliver} for ``pages`` of one file: the file itself for a one-page file,
    a rendered PNG for a page of a multi-page one (removed afterwards), the saved review image of the
    page when the file is gone (an operator decision after the file was archived elsewhere)."""
    stored = Path(document.stored_path) if document.stored_path else None
    source = next((p for p in (first, stored) if p is not None and p.is_file()), None)
    if source is None:
        images = {p.page_number: Path(p.image_path) for p in pages if p.image_path}
        if not pages or any(not path.is_file() for path in images.values()) or len(images) < len(pages):
            raise RoutingError(f"document {document.id} ({document.filename}): its file is gone")
        yield images
        return
    if (document.page_count or 1) <= 1:
        yield {p.page_number: source for p in pages}
        return
    wanted = {p.page_number for p in pages}
    with ExitStack() as cleanup:
        try:
            rendered = render_pages(source, wanted, settings.dir("processing") / "pages", document.sha256)
        except UnreadableImage as exc:
            raise RoutingError(f"{source} cannot be rendered: {exc.reason}") from exc
        for path in rendered.values():
            cleanup.callback(path.unlink, missing_ok=True)
        missing = wanted - set(rendered)
        if missing:
            raise RoutingError(f"{source} has no page {min(missing)}")
        yield rendered


def deliver(
    session: Session,
    decision: RoutingDecision,
    content: Path,
    rules: RoutingRules,
    settings: DocsortSettings,
    sender: QueueSender | None,
) -> None:
    """Deliver one decided page (``decision.label`` None: rejected) and mark the decision delivered.
    Flushes, does not commit: the caller commits it with whatever else belongs to the decision."""
    document = session.get(Document, decision.document_id)
    page = session.get(Page, decision.page_id) if decision.page_id is not None else None
    assert document is not None and page is not None
    item = RouteItem(
        document_id=document.id,
        page_number=page.page_number,
        page_count=document.page_count or 1,
        label=decision.label,
        sha256=document.sha256,
        filename=document.filename or content.name,
        content=content,
    )
    rule, destination = rules.for_label(decision.label)
    where = send_item(item, destination, settings.dir("outbox"), sender)
    decision.rule, decision.destination, decision.applied_at = rule, where, datetime.now(UTC)
    session.flush()
    log.info("route.delivered", document_id=document.id, page=page.page_number, rule=rule, where=where)


def model_decisions(session: Session, document_id: int) -> list[RoutingDecision]:
    """The document's decisions made by a model, page order."""
    stmt = (
        select(RoutingDecision)
        .join(Page, Page.id == RoutingDecision.page_id)
        .where(RoutingDecision.document_id == document_id, RoutingDecision.origin == DecisionOrigin.model)
        .order_by(Page.page_number)
    )
    return list(session.scalars(stmt))


def unapplied_routes(session: Session, document_id: int) -> list[RoutingDecision]:
    """Automatic decisions recorded but not yet delivered (a task died between the two)."""
    return [
        d
        for d in model_decisions(session, document_id)
        if d.kind == DecisionKind.auto and d.applied_at is None
    ]


def deliver_pending(
    sessions: sessionmaker[Session],
    document_id: int,
    path: Path | None,
    rules: RoutingRules,
    settings: DocsortSettings,
    sender: QueueSender | None,
) -> None:
    """Deliver a finished file's automatic decisions not delivered yet (a task may have died between
    recording and delivering); each is committed as it is delivered. A delivery that fails is noted on
    its decision and left pending."""
    with session_scope(sessions) as session:
        document = session.get(Document, document_id)
        if document is None or document.state != DocumentState.done:
            return
        pending = unapplied_routes(session, document.id)
        if not pending:
            return
        pages = [d.prediction.page for d in pending if d.prediction is not None]
        try:
            with page_contents(document, pages, settings, first=path) as contents:
                for decision in pending:
                    assert decision.prediction is not None
                    content = contents[decision.prediction.page.page_number]
                    try:
                        deliver(session, decision, content, rules, settings, sender)
                    except RoutingError as exc:
                        _note_failure(decision, document, str(exc))
                        continue
                    session.commit()  # one page delivered is one page recorded as delivered
        except RoutingError as exc:
            for decision in pending:
                _note_failure(decision, document, str(exc))


def _note_failure(decision: RoutingDecision, document: Document, error: str) -> None:
    metrics.error("routing")
    if "delivery failed" not in (decision.reason or ""):
        decision.reason = f"{decision.reason}; delivery failed: {error}"
    log.error("route.failed", document_id=document.id, decision_id=decision.id, error=error)
