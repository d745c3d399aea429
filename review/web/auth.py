"""Login and logout."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from review.security import authenticate, csrf_token
from review.web.deps import OPERATOR_KEY, db_session, render, safe_next
from schema.logs import get_logger

log = get_logger(__name__)
router = APIRouter()


@router.get("/login")
def login_page(request: Request, next: str = "/queue") -> Response:
    return render(request, "login.html", {"next": safe_next(next), "error": None, "name": ""})


@router.post("/login")
def login(
    request: Request,
    name: str = Form(""),
    password: str = Form(""),
    next: str = Form("/queue"),
    session: Session = Depends(db_session),
) -> Response:
    operator = authenticate(session, name, password)
    if operator is None:
        log.info("login.refused", name=name[:100])
        context = {"next": safe_next(next), "error": "Unknown name or wrong password.", "name": name}
        return render(request, "login.html", context, status_code=401)
    request.session.clear()  # a fresh session (and CSRF token) for the operator: no fixation
    request.session[OPERATOR_KEY] = operator.id
    csrf_token(request.session)
    log.info("login", operator=operator.name)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
