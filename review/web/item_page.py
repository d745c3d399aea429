"""One review item: see it, decide it (confirm, relabel, reject), or move on; and its images."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from review.claims import claim, release
from review.decisions import decide
from review.documents import deliver_reviewed, record_reviewed
from review.files import IMAGE_TYPES, review_file
from review.items import load_item
from review.originals import OriginalMissing, original_page, review_image
from review.queue import QueueFilters, neighbours, open_ids
from review.timefmt import now_utc
from review.undo import deliver_due, undo
from review.web.deps import ItemId, current_operator, db_session, render, safe_next, settings_of
from review.web.document_answer import answer_whole, parse_parts
from review.web.queue_page import queue_filters
from review.web_images import cam_cells, thumbnail, web_page
from review.whole import document_of
from schema.enums import ReviewAction
from schema.tables import Operator

router = APIRouter()
FLASH_KEY = "flash"
UNDO_KEY = "undo"  # the operator's last answer: {"id": prediction id, "until": epoch seconds}
DONE_WORDS = {
    ReviewAction.confirm: "Confirmed",
    ReviewAction.relabel: "Relabelled",
    ReviewAction.reject: "Rejected",
}


def _with_query(path: str, filters: QueueFilters) -> str:
    query = filters.query()
    return f"{path}?{urlencode(query)}" if query else path


@router.get("/items/{prediction_id}")
def item_page(
    request: Request,
    prediction_id: ItemId,
    filters: QueueFilters = Depends(queue_filters),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    now = now_utc()
    settings = settings_of(request)
    deliver_due(session, settings, now, settings.review_undo_seconds)
    item = load_item(session, prediction_id)
    held = None
    if item.review is None:
        ttl = timedelta(seconds=settings_of(request).review_claim_seconds)
        held = claim(session, prediction_id, operator.id, now, ttl)
    ids = open_ids(session, filters, operator.id, now)
    previous, following = neighbours(ids, prediction_id)
    context = {
        "item": item,
        "claim": held,
        "can_decide": item.review is None and held is not None and held.mine,
        "filters": filters,
        "query": filters.query(),
        "prev_url": _with_query(f"/items/{previous}", filters) if previous else None,
        "next_url": _with_query(f"/items/{following}", filters) if following else None,
        "queue_url": _with_query("/queue", filters),
        "flash": request.session.pop(FLASH_KEY, None),
        "undo": _undo_offer(request, now.timestamp()),
        "document": document_of(session, prediction_id) if item.review is None else None,
        "cam_cells": cam_cells(settings_of(request).dir("review"), item.cam_path) is not None,
        "cam_image": review_file(settings_of(request).dir("review"), item.cam_path) is not None,
        "position": ids.index(prediction_id) + 1 if prediction_id in ids else None,
        "open_count": len(ids),
    }
    return render(request, "item.html", context, operator=operator)


@router.post("/items/{prediction_id}/decide")
def decide_item(
    request: Request,
    prediction_id: ItemId,
    action: str = Form("decide"),
    label: str = Form(""),
    parts: str = Form("", max_length=100_000),
    note: str = Form("", max_length=2000),
    filters: QueueFilters = Depends(queue_filters),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    if action not in ("decide", "reject"):
        raise HTTPException(status_code=400, detail=f"unknown action {action!r}")
    chosen = None if action == "reject" else label
    if chosen == "" and not parts:
        raise HTTPException(status_code=400, detail="choose a class, or reject the page")
    now = now_utc()
    settings = settings_of(request)
    window = settings.review_undo_seconds
    upcoming = open_ids(session, filters, operator.id, now)
    after = neighbours(upcoming, prediction_id)[1]
    item = load_item(session, prediction_id)
    if parts:  # a document answered whole: its split and each part's class
        wanted = parse_parts(parts) if action == "decide" else None
        flash, done = answer_whole(session, settings, prediction_id, wanted, operator.id, now, item.filename)
        return _after_answer(request, filters, flash, prediction_id, now, window, upcoming, after, done)
    outcome = decide(
        session,
        settings,
        prediction_id=prediction_id,
        operator_id=operator.id,
        label=chosen,
        note=note,
        now=now,
        route=record_reviewed if window > 0 else deliver_reviewed,
    )
    shown = outcome.final_label or "unreadable"
    name = page_name(item.page_number, item.filename)
    flash = f"{DONE_WORDS[outcome.action]} {name} as {shown}."
    return _after_answer(
        request, filters, flash, prediction_id, now, window, upcoming, after, {prediction_id}
    )


def _after_answer(
    request: Request,
    filters: QueueFilters,
    flash: str,
    prediction_id: int,
    now: datetime,
    window: float,
    upcoming: list[int],
    after: int | None,
    done: set[int],
) -> Response:
    """Say what was answered (with the undo offer) and open the next page of the queue."""
    request.session[FLASH_KEY] = flash
    if window > 0:
        request.session[UNDO_KEY] = {"id": prediction_id, "until": now.timestamp() + window}
    rest = [i for i in upcoming if i not in done]
    target = after if after in rest else (rest[0] if rest else None)
    if target is None:
        return RedirectResponse(_with_query("/queue", filters), status_code=303)
    return RedirectResponse(_with_query(f"/items/{target}", filters), status_code=303)


def page_name(page_number: int, filename: str) -> str:
    """How the operator knows a page: its file and its page number there."""
    return f"page {page_number} of {filename or 'an untitled file'}"


def _undo_offer(request: Request, now: float) -> dict[str, float] | None:
    offer = request.session.get(UNDO_KEY)
    if not isinstance(offer, dict) or float(offer.get("until", 0)) <= now:
        request.session.pop(UNDO_KEY, None)
        return None
    return {"id": int(offer["id"]), "seconds_left": float(offer["until"]) - now}


@router.post("/items/{prediction_id}/undo")
def undo_item(
    request: Request,
    prediction_id: ItemId,
    filters: QueueFilters = Depends(queue_filters),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    now = now_utc()
    settings = settings_of(request)
    undone = undo(session, prediction_id, operator.id, now, settings.review_undo_seconds)
    request.session.pop(UNDO_KEY, None)
    name = page_name(undone.page_number, undone.filename)
    request.session[FLASH_KEY] = f"Undone: {name} is waiting for your answer again."
    return RedirectResponse(_with_query(f"/items/{prediction_id}", filters), status_code=303)


@router.post("/items/{prediction_id}/release")
def release_item(
    request: Request,
    prediction_id: ItemId,
    next: str = Form("/queue"),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    release(session, prediction_id, operator.id)
    return RedirectResponse(safe_next(next), status_code=303)


def _image(request: Request, session: Session, prediction_id: int, which: str) -> Response:
    if which == "page":
        return _made_from_page(request, session, prediction_id, review_file)
    item = load_item(session, prediction_id)
    return _image_file(review_file(settings_of(request).dir("review"), item.cam_path), which, prediction_id)


def _made_from_page(
    request: Request, session: Session, prediction_id: int, make: Callable[[Path, str | None], Path | None]
) -> Response:
    """An image made once from the page's review image (itself, its WebP, its thumbnail); the review image
    is made first from the received file where the worker left it to be made here; an error names the
    file and the reason when it cannot be."""
    item = load_item(session, prediction_id)
    try:
        review_image(settings_of(request), item.image_path, item.stored_path, item.page_number, item.filename)
    except OriginalMissing as exc:
        text = f"The image of {page_name(item.page_number, item.filename)} cannot be made: {exc.reason}"
        return JSONResponse({"detail": text}, status_code=exc.status)
    return _image_file(make(settings_of(request).dir("review"), item.image_path), "page", prediction_id)


def _image_file(path: Path | None, which: str, prediction_id: int) -> Response:
    """A stored review image, typed by its suffix and cached by the operator's browser; 404 if absent."""
    if path is None:
        raise HTTPException(status_code=404, detail=f"no {which} image for item {prediction_id}")
    return FileResponse(
        path, media_type=IMAGE_TYPES[path.suffix.lower()], headers={"Cache-Control": "private, max-age=600"}
    )


@router.get("/items/{prediction_id}/page.png")
def page_image(
    request: Request,
    prediction_id: ItemId,
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    return _image(request, session, prediction_id, "page")


@router.get("/items/{prediction_id}/page.webp")
def page_webp(
    request: Request,
    prediction_id: ItemId,
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    return _made_from_page(request, session, prediction_id, web_page)


@router.get("/items/{prediction_id}/original.jpg")
def original_image(
    request: Request,
    prediction_id: ItemId,
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    """The page of the received file at its scanned resolution (a JPEG made once); an error names the
    file and the reason (404 missing, 422 unreadable) and the viewer keeps the preview."""
    item = load_item(session, prediction_id)
    try:
        path = original_page(
            settings_of(request), item.stored_path, item.sha256, item.page_number, item.filename
        )
    except OriginalMissing as exc:
        text = f"The original of {page_name(item.page_number, item.filename)} cannot be shown: {exc.reason}"
        return JSONResponse({"detail": text}, status_code=exc.status)
    return _image_file(path, "original", prediction_id)


@router.get("/items/{prediction_id}/thumb.jpg")
def page_thumbnail(
    request: Request,
    prediction_id: ItemId,
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    """A small JPEG of the page (at most 256 px) for the page strip and the grid."""
    return _made_from_page(request, session, prediction_id, thumbnail)


@router.get("/items/{prediction_id}/cam.json")
def cam_json(
    request: Request,
    prediction_id: ItemId,
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    item = load_item(session, prediction_id)
    cells = cam_cells(settings_of(request).dir("review"), item.cam_path)
    if cells is None:
        raise HTTPException(status_code=404, detail=f"no CAM cells for item {prediction_id}")
    return JSONResponse(cells, headers={"Cache-Control": "private, max-age=600"})


@router.get("/items/{prediction_id}/cam.png")
def cam_image(
    request: Request,
    prediction_id: ItemId,
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    return _image(request, session, prediction_id, "CAM")
