"""``docsort serve``: one web application made of the review pages and the jobs API.

The two packages never import each other; this module composes their routers.
"""

from __future__ import annotations

from typing import Any

import typer
from fastapi import FastAPI

from ingest.api import router as jobs_router
from review.app import create_app as create_review_app
from review.settings import review_settings
from schema.db import require_migrated
from schema.logs import configure_logging
from schema.settings import DocsortSettings


def create_app(settings: DocsortSettings | None = None) -> FastAPI:
    """The review pages and the jobs API (``/v1``) in one application."""
    app = create_review_app(settings)
    app.include_router(jobs_router)
    return app


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, max=64, help="Server processes."),
    proxy_headers: bool = typer.Option(False, help="Trust X-Forwarded-* headers (behind a reverse proxy)."),
    forwarded_allow_ips: str | None = typer.Option(
        None, help="Proxy addresses whose X-Forwarded-* headers are trusted (comma-separated, or *)."
    ),
) -> None:
    """Serve the review web page and the jobs API."""
    import uvicorn

    settings = review_settings()
    configure_logging(settings.log_level, settings.log_format)
    settings.ensure_dirs()
    require_migrated(settings.database_url)
    typer.echo(f"docsort review on http://{host}:{port}/ (jobs API under /v1)")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "proxy_headers": proxy_headers,
        "forwarded_allow_ips": forwarded_allow_ips,
        "log_config": None,
        # On SIGTERM or SIGINT, requests still running after this are cancelled (a client that never
        # finishes sending its request kept the server up).
        "timeout_graceful_shutdown": settings.review_shutdown_seconds,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
    else:  # each process builds its own app (and database pool) from the environment
        uvicorn.run("docsort.serve:create_app", factory=True, workers=workers, **options)


def register(app: typer.Typer) -> None:
    """Add ``docsort serve`` to ``app``."""
    app.command("serve")(serve)
