"""The dashboard: throughput, review rate, classes, queue age and model versions, as server-drawn plots."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from review.plots import PLOTS
from review.quality import quality_section
from review.stats import dashboard
from review.timefmt import now_utc
from review.web.deps import current_operator, db_session, render
from schema.tables import Operator

router = APIRouter()


@router.get("/dashboard")
def dashboard_page(
    request: Request,
    hours: int = Query(24, ge=1, le=168),
    operator: Operator = Depends(current_operator),
    session: Session = Depends(db_session),
) -> Response:

    board = dashboard(session, now_utc(), hours)
    context = {"board": board, "hours": hours, "plots": list(PLOTS)}
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
    svg = draw(dashboard(session, now_utc(), hours))
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=30"})
