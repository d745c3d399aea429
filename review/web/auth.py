"""Login and logout.

A login is counted by the throttle (:mod:`review.throttle`) before its password is checked; the
check runs in a worker thread within the process's bound (:class:`review.security.PasswordChecks`);
a success opens a server-side session, which logout ends.
"""

from __future__ import annotations

import math
from datetime import timedelta

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from review.security import (
    PasswordCheck,
    PasswordChecks,
    active_operator,
    close_session,
    csrf_token,
    open_session,
)
from review.throttle import Attempt, ThrottleRules, address_key, begin_attempt, finish_attempt
from review.timefmt import now_utc
from review.web.deps import SESSION_KEY, db_session, render, safe_next, settings_of
from schema.logs import get_logger
from schema.tables import Operator

log = get_logger(__name__)
router = APIRouter()
WRONG = "Unknown name or wrong password."


def _login_page(request: Request, next_url: str, name: str, error: str | None, status: int = 200) -> Response:
    context = {"next": safe_next(next_url), "error": error, "name": name[:100]}
    return render(request, "login.html", context, status_code=status)


@router.get("/login")
def login_page(request: Request, next: str = "/queue") -> Response:
    return _login_page(request, next, "", None)


def _start(
    session: Session, name: str, address: str, rules: ThrottleRules
) -> tuple[Attempt, Operator | None]:
    attempt = begin_attempt(session, name, address, rules, now_utc())
    operator = None if attempt.locked_until is not None else active_operator(session, name)
    return attempt, operator


def _finish(
    session: Session,
    attempt: Attempt,
    operator: Operator | None,
    check: PasswordCheck,
    rules: ThrottleRules,
    lifetime: timedelta,
) -> str | None:
    """Record the attempt's outcome; on success the new session's token (and an updated hash, if due)."""
    now = now_utc()
    finish_attempt(session, attempt.id, check.ok, rules, now)
    if not check.ok or operator is None:
        return None
    if check.new_hash is not None:
        operator.password_hash = check.new_hash  # committed with the session
    return open_session(session, operator, now, lifetime)


def _locked_out(request: Request, next_url: str, name: str, attempt: Attempt, address: str) -> Response:
    assert attempt.locked_until is not None
    seconds = max(1, math.ceil((attempt.locked_until - now_utc()).total_seconds()))
    minutes = math.ceil(seconds / 60)
    log.warning("login.locked", name=name[:100], address=address, until=attempt.locked_until.isoformat())
    error = (
        "Too many failed logins for this name or from this address. Logins are refused for "
        f"{minutes} more minute{'s' if minutes != 1 else ''}, even with the right password."
    )
    response = _login_page(request, next_url, name, error, status=429)
    response.headers["Retry-After"] = str(seconds)
    return response


@router.post("/login")
async def login(
    request: Request,
    name: str = Form(""),
    password: str = Form(""),
    next: str = Form("/queue"),
    session: Session = Depends(db_session),
) -> Response:
    settings = settings_of(request)
    rules = ThrottleRules.of(settings)
    name = name.strip()
    address = address_key(request.client.host if request.client else None)
    attempt, operator = await run_in_threadpool(_start, session, name, address, rules)
    if attempt.locked_until is not None:
        return _locked_out(request, next, name, attempt, address)
    checks: PasswordChecks = request.app.state.password_checks
    check = await checks.check(operator.password_hash if operator is not None else None, password)
    lifetime = timedelta(hours=settings.review_session_hours)
    token = await run_in_threadpool(_finish, session, attempt, operator, check, rules, lifetime)
    if token is None or operator is None:
        log.info("login.refused", name=name[:100], address=address)
        return _login_page(request, next, name, WRONG, status=401)
    request.session.clear()  # a fresh session (and CSRF token) for the operator: no fixation
    request.session[SESSION_KEY] = token
    csrf_token(request.session)
    log.info("login", operator=operator.name, address=address)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, session: Session = Depends(db_session)) -> Response:
    """End this session on the server too: a copy of its cookie no longer works."""
    close_session(session, request.session.get(SESSION_KEY))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
