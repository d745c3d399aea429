"""The jobs API for enterprise systems (``/v1/...``), mounted by :func:`review.app.create_app`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["jobs"])
