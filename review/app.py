"""The operator web pages as an application; ``docsort serve`` adds the jobs API (:mod:`docsort.serve`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from review.errors import AlreadyDecided, InvalidLabel, ItemNotFound, ItemTaken, NotUndoable, ReviewError
from review.originals import make_missing_images
from review.security import PasswordChecks
from review.settings import ReviewSettings, review_settings
from review.timefmt import now_utc
from review.undo import deliver_due
from review.web import router as web_router
from review.web.deps import CsrfRefused, LoginRequired, login_redirect_url, render
from schema import db
from schema.logs import get_logger
from schema.settings import DocsortSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "docsort_session"
# No page of this application has a longer path; a longer one is refused before any route runs.
MAX_PATH_BYTES = 2048
log = get_logger(__name__)

_ERROR_STATUS: list[tuple[type[ReviewError], int, str]] = [
    (ItemNotFound, 404, "Not in the review queue"),
    (AlreadyDecided, 409, "Already decided"),
    (ItemTaken, 409, "Taken by another operator"),
    (NotUndoable, 409, "Too late to undo"),
    (InvalidLabel, 400, "Not a class of this model"),
    (ReviewError, 500, "The decision could not be saved"),
]


class RefuseMalformedUrls:
    """Answer 400 to a NUL character in the path or the query, 414 to an over-long path, at once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            query: bytes = scope.get("query_string", b"")
            refusal = None
            if len(raw_path) > MAX_PATH_BYTES:
                text = f"the path is longer than {MAX_PATH_BYTES} bytes"
                refusal = PlainTextResponse(text, status_code=414)
            elif "\x00" in scope["path"] or b"%00" in raw_path or b"%00" in query or b"\x00" in query:
                refusal = PlainTextResponse("the address holds a NUL character", status_code=400)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _message(request: Request, status: int, title: str, text: str) -> Response:
    return render(request, "message.html", {"title": title, "text": text}, status_code=status)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/v1/", "/static/"))


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(login_redirect_url(exc.next_url), status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        text = "This form was not sent from a docsort page of your session. Reload the page and try again."
        return _message(request, 403, "Form refused", text)

    @app.exception_handler(ReviewError)
    async def _review_error(request: Request, exc: ReviewError) -> Response:
        status, title = next((s, t) for cls, s, t in _ERROR_STATUS if isinstance(exc, cls))
        if status >= 500:
            log.error("review.error", path=request.url.path, error=str(exc))
        return _message(request, status, title, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):
            return await http_exception_handler(request, exc)
        return _message(request, exc.status_code, "Not possible", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        """An operator page with a bad id is not found (404); other bad values are a bad request (400)."""
        if _is_api(request):
            return await request_validation_exception_handler(request, exc)
        errors = exc.errors()
        if any(e.get("loc", ("",))[0] == "path" for e in errors):
            return _message(request, 404, "Not found", "There is no such page.")
        where = ", ".join(str(e.get("loc", ("?",))[-1]) for e in errors)
        return _message(request, 400, "Not possible", f"Invalid value for: {where}.")


DELIVERY_SWEEP_SECONDS = 1.0


def _sweep_once(app: FastAPI) -> None:
    settings: ReviewSettings = app.state.settings
    with app.state.sessions() as session:
        deliver_due(session, settings, now_utc(), settings.review_undo_seconds)
    with app.state.sessions() as session:
        make_missing_images(session, settings)  # the review images the worker left to be made here


async def _deliver_answered(app: FastAPI) -> None:
    """Deliver answered documents once their undo window has passed, and make the review images the
    worker left to be made here, every second while serving. A failed sweep is retried the next second
    and logged (as a warning, once until the error changes)."""
    last_error = ""
    while True:
        await asyncio.sleep(DELIVERY_SWEEP_SECONDS)
        try:
            await asyncio.to_thread(_sweep_once, app)
            last_error = ""
        except Exception as exc:
            if str(exc) != last_error:
                log.warning("review.delivery_sweep_failed", error=str(exc))
            last_error = str(exc)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_deliver_answered(app))
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def create_app(settings: DocsortSettings | None = None) -> FastAPI:
    settings = review_settings(settings)
    app = FastAPI(
        title="docsort", version="1", docs_url="/docs", openapi_url="/openapi.json", lifespan=_lifespan
    )
    app.state.settings = settings
    app.state.sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
    app.state.password_checks = PasswordChecks(settings.review_hash_concurrency)

    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.review_session_hours * 3600,
        same_site="lax",
        https_only=settings.review_secure_cookie,
    )
    app.add_middleware(RefuseMalformedUrls)
    _add_error_pages(app)
    return app
