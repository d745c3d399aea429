"""The web application served by ``docsort serve``: the operator pages and the jobs API."""

from __future__ import annotations

from fastapi import FastAPI

from schema import db
from schema.settings import DocsortSettings, get_settings


def create_app(settings: DocsortSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="docsort", version="1", docs_url="/docs", openapi_url="/openapi.json")
    app.state.settings = settings
    app.state.sessions = db.make_sessionmaker(db.make_engine(settings.database_url))

    from review.api import router as api_router
    from review.web import router as web_router

    app.include_router(api_router)
    app.include_router(web_router)
    return app
