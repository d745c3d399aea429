"""What every operator page needs: the database session, the logged-in operator, CSRF, templates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from review.security import csrf_token, csrf_valid
from review.settings import ReviewSettings
from review.timefmt import age_text, as_utc, now_utc
from schema.tables import Operator

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
# Operator pages load nothing from elsewhere and may not be framed (clickjacking on the decide buttons).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
OPERATOR_KEY = "operator_id"
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """No logged-in operator: the page answers with a redirect to the login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfRefused(Exception):
    """A form arrived without this session's CSRF token."""


def _age(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "–"
    return age_text((now or now_utc()) - as_utc(value))


def _clock(value: datetime | None) -> str:
    return "–" if value is None else as_utc(value).strftime("%Y-%m-%d %H:%M UTC")


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["age"] = _age
templates.env.filters["clock"] = _clock
templates.env.filters["pct"] = lambda v: "–" if v is None else f"{float(v):.0%}"
templates.env.filters["urlencode_dict"] = lambda d: urlencode(d)


def settings_of(request: Request) -> ReviewSettings:
    settings = request.app.state.settings
    assert isinstance(settings, ReviewSettings)
    return settings


def db_session(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


def _next_url(request: Request) -> str:
    path = request.url.path
    if request.method == "GET" and request.url.query:
        path += "?" + request.url.query
    return path


def current_operator(request: Request, session: Session = Depends(db_session)) -> Operator:
    """The logged-in, active operator; :class:`LoginRequired` otherwise."""
    operator_id = request.session.get(OPERATOR_KEY)
    operator = session.get(Operator, operator_id) if isinstance(operator_id, int) else None
    if operator is None or not operator.active:
        request.session.pop(OPERATOR_KEY, None)
        raise LoginRequired(_next_url(request))
    return operator


async def csrf_protect(request: Request) -> None:
    """Refuse any POST whose form lacks this session's CSRF token (every operator form carries one)."""
    if request.method != "POST":
        return
    form = await request.form()
    if not csrf_valid(request.session, form.get(CSRF_FIELD)):
        raise CsrfRefused()


def login_redirect_url(next_url: str) -> str:
    return "/login?next=" + quote(next_url, safe="/")


def safe_next(value: str | None) -> str:
    """A local path to go to after login; anything else (another site, a scheme) goes to the queue."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/queue"
    return value


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    operator: Operator | None = None,
    status_code: int = 200,
) -> Response:
    """A page from ``templates/``, with the CSRF token, the operator and the time."""
    base = {"csrf_token": csrf_token(request.session), "operator": operator, "now": now_utc()}
    return templates.TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status_code, headers=PAGE_HEADERS
    )
