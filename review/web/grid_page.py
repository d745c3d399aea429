"""Grid review: thumbnails of the queue filtered by predicted class, several chosen, confirmed or
relabelled at once (each page answered as on its own page, by :func:`review.decisions.decide`)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from review.decisions import class_names, decide
from review.documents import deliver_reviewed, record_reviewed
from review.errors import AlreadyDecided, InvalidLabel, ItemNotFound, ItemTaken, NotUndoable
from review.queue import QueueFilters, list_pending, summarize
from review.timefmt import now_utc
from review.undo import deliver_due, undo
from review.web.deps import current_operator, db_session, render, settings_of
from schema.tables import Operator, Prediction

router = APIRouter()
GRID_SIZE = 60
GRID_FLASH = "grid_flash"
GRID_UNDO = "grid_undo"  # the last bulk answer: {"ids": [...], "until": epoch seconds}
MAX_BULK = 500


@router.get("/grid")
def grid_page(
    request: Request,
    label: str = Query("", alias="class", max_length=200),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    now = now_utc()
    settings = settings_of(request)
    deliver_due(session, settings, now, settings.review_undo_seconds)
    summary = summarize(session, now)
    chosen = label or (summary.per_label.most_common(1)[0][0] if summary.per_label else "")
    items, count = list_pending(session, QueueFilters(label=chosen), now, limit=GRID_SIZE)
    free = [i for i in items if i.claimed_by_id in (None, operator.id)]
    first = session.get(Prediction, free[0].prediction_id) if free else None
    classes = class_names(first) if first is not None else sorted(summary.per_label)
    context = {
        "label": chosen,
        "items": free,
        "count": count,
        "summary": summary,
        "classes": classes,
        "flash": request.session.pop(GRID_FLASH, None),
        "undo_ids": _undo_offer(request, now.timestamp()),
    }
    return render(request, "grid.html", context, operator=operator)


@router.post("/grid/decide")
def grid_decide(
    request: Request,
    ids: list[int] = Form(default_factory=list),
    action: str = Form("confirm"),
    relabel_to: str = Form("", max_length=200),
    label: str = Form("", alias="class", max_length=200),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    if action not in ("confirm", "relabel"):
        raise HTTPException(status_code=400, detail=f"unknown action {action!r}")
    if not ids or len(ids) > MAX_BULK:
        raise HTTPException(status_code=400, detail=f"choose between 1 and {MAX_BULK} pages")
    if action == "relabel" and not relabel_to:
        raise HTTPException(status_code=400, detail="choose the class to relabel the pages as")
    settings = settings_of(request)
    route = record_reviewed if settings.review_undo_seconds > 0 else deliver_reviewed
    done: list[int] = []
    skipped = 0
    for prediction_id in ids:
        try:
            target = relabel_to if action == "relabel" else None
            outcome_label = target or _predicted(session, prediction_id)
            decide(session, settings, prediction_id=prediction_id, operator_id=operator.id,
                   label=outcome_label, note=None, now=now_utc(), route=route)  # fmt: skip
            done.append(prediction_id)
        except (AlreadyDecided, ItemTaken, ItemNotFound, InvalidLabel):
            session.rollback()
            skipped += 1
    verb = "Confirmed" if action == "confirm" else f"Relabelled as {relabel_to}:"
    note = f"; {skipped} skipped (answered or taken meanwhile, or not a class of their model)"
    note = note if skipped else ""
    request.session[GRID_FLASH] = f"{verb} {len(done)} page{'s' if len(done) != 1 else ''}{note}."
    if settings.review_undo_seconds > 0 and done:
        until = now_utc().timestamp() + settings.review_undo_seconds
        request.session[GRID_UNDO] = {"ids": done, "until": until}
    query = f"?{urlencode({'class': label})}" if label else ""
    return RedirectResponse(f"/grid{query}", status_code=303)


def _undo_offer(request: Request, now: float) -> list[int] | None:
    offer = request.session.get(GRID_UNDO)
    if not isinstance(offer, dict) or float(offer.get("until", 0)) <= now:
        request.session.pop(GRID_UNDO, None)
        return None
    return [int(i) for i in offer.get("ids", [])]


@router.post("/grid/undo")
def grid_undo(
    request: Request,
    label: str = Query("", alias="class", max_length=200),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:
    """Take back the last bulk answer, page by page, by the undo rule (:mod:`review.undo`)."""
    now = now_utc()
    ids = _undo_offer(request, now.timestamp())
    if not ids:
        raise NotUndoable("there is no bulk answer of yours left to undo")
    window = settings_of(request).review_undo_seconds
    for prediction_id in ids:
        undo(session, prediction_id, operator.id, now, window)
    request.session.pop(GRID_UNDO, None)
    request.session[GRID_FLASH] = f"Undone: {len(ids)} page{'s' if len(ids) != 1 else ''} waiting again."
    query = f"?{urlencode({'class': label})}" if label else ""
    return RedirectResponse(f"/grid{query}", status_code=303)


def _predicted(session: Session, prediction_id: int) -> str:
    prediction = session.get(Prediction, prediction_id)
    if prediction is None:
        raise ItemNotFound(f"no page waits for review under id {prediction_id}")
    return prediction.label
