"""The operator web pages (login, review queue, item, dashboard), mounted by :func:`review.app.create_app`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["review"])
