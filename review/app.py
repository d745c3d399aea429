"""The operator web pages as an application; ``docsort serve`` adds the jobs API (:mod:`docsort.serve`)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from review.errors import AlreadyDecided, InvalidLabel, ItemNotFound, ItemTaken, ReviewError
from review.settings import review_settings
from review.web import router as web_router
from review.web.deps import CsrfRefused, LoginRequired, login_redirect_url, render
from schema import db
from schema.logs import get_logger
from schema.settings import DocsortSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "docsort_session"
log = get_logger(__name__)

_ERROR_STATUS: list[tuple[type[ReviewError], int, str]] = [
    (ItemNotFound, 404, "Not in the review queue"),
    (AlreadyDecided, 409, "Already decided"),
    (ItemTaken, 409, "Taken by another operator"),
    (InvalidLabel, 400, "Not a class of this model"),
    (ReviewError, 500, "The decision could not be saved"),
]


def _message(request: Request, status: int, title: str, text: str) -> Response:
    return render(request, "message.html", {"title": title, "text": text}, status_code=status)


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
        if request.url.path.startswith("/v1/") or request.url.path.startswith("/static/"):
            return await http_exception_handler(request, exc)
        return _message(request, exc.status_code, "Not possible", str(exc.detail))


def create_app(settings: DocsortSettings | None = None) -> FastAPI:
    settings = review_settings(settings)
    app = FastAPI(title="docsort", version="1", docs_url="/docs", openapi_url="/openapi.json")
    app.state.settings = settings
    app.state.sessions = db.make_sessionmaker(db.make_engine(settings.database_url))

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
    _add_error_pages(app)
    return app
