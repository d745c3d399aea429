"""The review queue page: one row per document, oldest first, with counts and filters."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from review.queue import QueueFilters, list_documents, summarize
from review.timefmt import now_utc
from review.undo import deliver_due
from review.web.deps import current_operator, db_session, render, settings_of
from schema.tables import Operator

router = APIRouter()
PAGE_SIZE = 50


def queue_filters(
    label: str = Query("", alias="class", max_length=200),
    source: str = Query("", max_length=32),
    version: str = Query("", max_length=64),
) -> QueueFilters:
    return QueueFilters(label=label, source=source, version=version)


@router.get("/")
def home(operator: Operator = Depends(current_operator)) -> Response:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue")
def queue_page(
    request: Request,
    page: int = Query(1, ge=1, le=100000),
    filters: QueueFilters = Depends(queue_filters),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    now = now_utc()
    settings = settings_of(request)
    deliver_due(session, settings, now, settings.review_undo_seconds)
    items, count = list_documents(
        session, filters, now, operator.id, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    summary = summarize(session, now)
    pages = max(1, -(-count // PAGE_SIZE))
    context = {
        "items": items,
        "count": count,
        "summary": summary,
        "filters": filters,
        "page": page,
        "pages": pages,
        "first_index": (page - 1) * PAGE_SIZE,
        "query": filters.query(),
        "refresh_seconds": settings.review_refresh_seconds,
        "target_seconds": settings.review_target_minutes * 60,
    }
    return render(request, "queue.html", context, operator=operator)
