"""The item page's answer on a whole document: the parts the page sends, checked, and the message."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import HTTPException
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from review.settings import ReviewSettings
from review.whole import decide_whole, document_of
from schema.enums import DocumentAction
from worker.documents import Part


class _PartIn(BaseModel):
    pages: list[int] = Field(min_length=1, max_length=10_000)
    label: str | None = Field(None, max_length=200)


def parse_parts(text: str) -> list[Part]:
    """The ``parts`` field: a JSON list of {"pages": [...], "label": "class" or null}; 400 if malformed."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, list) or not raw:
            raise ValueError("a non-empty list of parts")
        parts = [_PartIn.model_validate(p) for p in raw]
    except (ValueError, ValidationError) as exc:
        raise HTTPException(status_code=400, detail=f"the document's parts are not readable: {exc}") from exc
    return [Part(tuple(p.pages), p.label) for p in parts]


def _pages(numbers: tuple[int, ...]) -> str:
    return f"page {numbers[0]}" if len(numbers) == 1 else f"pages {numbers[0]}–{numbers[-1]}"


def answer_whole(
    session: Session,
    settings: ReviewSettings,
    prediction_id: int,
    parts: list[Part] | None,
    operator_id: int,
    now: datetime,
    filename: str,
) -> tuple[str, set[int]]:
    """Answer the document holding ``prediction_id`` (``parts`` None: reject it whole). Returns the
    message for the operator and the pages' ids, now out of the queue."""
    if parts is None:
        found = document_of(session, prediction_id)
        if found is None:
            raise HTTPException(status_code=409, detail="this document was answered already")
        parts = [Part(tuple(p.page_number for p in found.pages), None)]
    document, answer = decide_whole(
        session,
        settings,
        prediction_id=prediction_id,
        parts=parts,
        operator_id=operator_id,
        now=now,
        deliver_now=settings.review_undo_seconds <= 0,
    )
    name = filename or "an untitled file"
    n = len(document.pages)
    if answer.action == DocumentAction.split_up:
        shown = ", ".join(f"{p.label or 'rejected'} ({_pages(p.pages)})" for p in parts)
        flash = f"Split {name} into {len(parts)} documents: {shown}."
    elif answer.action == DocumentAction.reject:
        flash = f"Rejected {name} ({n} pages) as unreadable."
    else:
        verb = "Confirmed" if answer.action == DocumentAction.confirm else "Relabelled"
        flash = f"{verb} {name} ({n} pages) as {parts[0].label}."
    return flash, {p.prediction_id for p in document.pages}
