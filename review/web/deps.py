"""What every operator page needs: the database session, the logged-in operator, CSRF, templates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import fastapi
from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.orm import Session

from review.security import csrf_token, csrf_valid, session_operator
from review.settings import ReviewSettings
from review.timefmt import age_text, as_utc, now_utc
from schema.logs import escape_hidden
from schema.tables import Operator

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
# Operator pages load nothing from elsewhere and may not be framed (clickjacking on the decide buttons).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SESSION_KEY = "sid"
CSRF_FIELD = "csrf_token"
# Row ids are INTEGER columns: a larger number names nothing (and would overflow the database driver).
MAX_ID = 2**31 - 1
ItemId = Annotated[int, fastapi.Path(ge=1, le=MAX_ID, description="A prediction's id.")]


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


def visible_text(text: str) -> str:
    """``text`` with control, format (bidi override, zero-width) and separator characters written as
    ``[U+202E]``: a name shows what it is, not what it pretends (``invoice[U+202E]fdp.exe``)."""
    return escape_hidden(text, lambda c: f"[U+{ord(c):04X}]", keep="\t\n\r")


def _shown(value: Any) -> Any:
    """Every ``{{ value }}`` of the templates: strings made visible; markup (``|e``, ``|tojson``) as is."""
    return visible_text(value) if isinstance(value, str) and not isinstance(value, Markup) else value


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.finalize = _shown
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
    """The active operator of this request's live session; :class:`LoginRequired` otherwise."""
    operator = session_operator(session, request.session.get(SESSION_KEY), now_utc())
    if operator is None:
        request.session.pop(SESSION_KEY, None)
        raise LoginRequired(_next_url(request))
    return operator


async def check_form(request: Request) -> None:
    """Refuse any POST whose form has a NUL character (400) or lacks this session's CSRF token (403)."""
    if request.method != "POST":
        return
    form = await request.form()
    for key, value in form.multi_items():
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            raise HTTPException(status_code=400, detail="a form field holds a NUL character")
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
