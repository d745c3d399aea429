"""Route step: deliver one decided page by the routing rules, the same way for model and operator decisions.

A page's content is the original file for a one-page document, and the page rendered as PNG for a page
of a multi-page one. Queue and webhook consumers get a path that lasts: the page is first copied into
the outbox (``_queue/<name>/`` or ``_webhook/``) and that copy's path is what they receive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from schema.logs import get_logger
from schema.tables import Document, Page
from worker.cam import save_png
from worker.imaging import UnreadableImage, iter_pages
from worker.routing import (
    ROUTED_TASK,
    Destination,
    QueueSender,
    RouteItem,
    RoutingError,
    RoutingRules,
    deliver,
)
from worker.settings import WorkerSettings

log = get_logger(__name__)


def celery_queue_sender(queue_options: dict[str, Any] | None = None) -> QueueSender:
    """Send a routed page to a Celery queue as task ``docsort.routed.v1`` (kwargs: the page payload)."""

    def send(queue: str, payload: dict[str, Any]) -> None:
        from worker.celery_app import app

        app.send_task(ROUTED_TASK, kwargs=payload, queue=queue, **(queue_options or {}))

    return send


def durable_copy(item: RouteItem, destination: Destination, outbox: Path) -> RouteItem:
    """For queue and webhook destinations: the page copied into the outbox, so its path outlives the task."""
    if destination.folder:
        return item
    sub = f"_queue/{destination.queue}" if destination.queue else "_webhook"
    copy = Path(deliver(item, Destination(folder=sub), outbox))
    return RouteItem(
        document_id=item.document_id,
        page_number=item.page_number,
        page_count=item.page_count,
        label=item.label,
        sha256=item.sha256,
        filename=item.filename,
        content=copy,
    )


def route_item(
    item: RouteItem, rules: RoutingRules, settings: WorkerSettings, sender: QueueSender | None = None
) -> tuple[str, str]:
    """Deliver ``item`` to the destination its label's rule names; (rule name, where it went)."""
    rule, destination = rules.for_label(item.label)
    outbox = settings.dir("outbox")
    item = durable_copy(item, destination, outbox)
    where = deliver(item, destination, outbox, send_to_queue=sender or celery_queue_sender())
    log.info("route.delivered", document_id=item.document_id, page=item.page_number, rule=rule, where=where)
    return rule, where


def extract_pages(source: Path, numbers: set[int], out_dir: Path, sha256: str) -> dict[int, Path]:
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


def page_source(document: Document, page: Page, fallback: Path | None = None) -> Path:
    """The file a page's content comes from: the document's file if present, else its review image."""
    candidates = [Path(p) for p in (document.stored_path, fallback) if p]
    for path in candidates:
        if path.is_file():
            return path
    if page.image_path and Path(page.image_path).is_file():
        return Path(page.image_path)
    raise RoutingError(
        f"document {document.id} ({document.filename}) page {page.page_number}: "
        "neither the document's file nor a saved page image exists"
    )


@contextmanager
def page_content(document: Document, page: Page, settings: WorkerSettings) -> Iterator[Path]:
    """The content to deliver for one page; a temporary rendered PNG for a page of a multi-page file."""
    source = page_source(document, page)
    if (document.page_count or 1) <= 1 or source == Path(page.image_path or "/nonexistent"):
        yield source
        return
    out_dir = settings.dir("processing") / "pages"
    try:
        rendered = extract_pages(source, {page.page_number}, out_dir, document.sha256)
    except UnreadableImage as exc:
        raise RoutingError(f"page {page.page_number} of {source} cannot be rendered: {exc.reason}") from exc
    path = rendered.get(page.page_number)
    if path is None:
        raise RoutingError(f"{source} has no page {page.page_number}")
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def route_item_for(document: Document, page: Page, label: str | None, content: Path) -> RouteItem:
    return RouteItem(
        document_id=document.id,
        page_number=page.page_number,
        page_count=document.page_count or 1,
        label=label,
        sha256=document.sha256,
        filename=document.filename or Path(content).name,
        content=content,
    )
