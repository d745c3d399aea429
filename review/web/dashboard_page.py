"""The dashboard: throughput, review rate, classes, queue age and model versions, as server-drawn plots."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from review.plots import PLOTS
from review.quality import quality_section
from review.stats import Dashboard, dashboard
from review.team import team_numbers
from review.timefmt import now_utc
from review.web.deps import current_operator, db_session, render
from schema.tables import Operator

router = APIRouter()
BOARD_SECONDS = 10.0  # the page and its five plots are drawn from one computation of the numbers
_boards: dict[tuple[str, int], tuple[float, Dashboard]] = {}
_boards_lock = threading.Lock()


def cached_dashboard(session: Session, now: datetime, hours: int, *, fresh: bool) -> Dashboard:
    """The dashboard's numbers for ``hours``: the page computes them (``fresh``) and its plots, asked
    for right after, reuse them for up to ``BOARD_SECONDS`` instead of computing them five times more."""
    key = (str(session.get_bind().engine.url), hours)
    with _boards_lock:
        found = _boards.get(key)
        if not fresh and found is not None and time.monotonic() - found[0] < BOARD_SECONDS:
            return found[1]
    board = dashboard(session, now, hours)
    with _boards_lock:
        _boards[key] = (time.monotonic(), board)
    return board


@router.get("/dashboard")
def dashboard_page(
    request: Request,
    hours: int = Query(24, ge=1, le=168),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:

    board = cached_dashboard(session, now_utc(), hours, fresh=True)
    context = {"board": board, "hours": hours, "plots": list(PLOTS)}
    context["team"] = team_numbers(session, board.now, hours)
    context["quality"] = quality_section(session, board.now, hours)
    return render(request, "dashboard.html", context, operator=operator)


@router.get("/dashboard/plots/{name}.svg")
def dashboard_plot(
    name: str,
    hours: int = Query(24, ge=1, le=168),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:

    draw = PLOTS.get(name)
    if draw is None:
        raise HTTPException(status_code=404, detail=f"no plot named {name!r}")
    svg = draw(cached_dashboard(session, now_utc(), hours, fresh=False))
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=30"})
