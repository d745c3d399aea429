"""``docsort db``: migrations."""

from __future__ import annotations

import typer

from schema import db
from schema.settings import get_settings

db_app = typer.Typer(help="Database migrations.", no_args_is_help=True, rich_markup_mode=None)


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = get_settings()
    settings.ensure_dirs()
    db.upgrade(settings.database_url, revision)
    typer.echo(
        f"database at {db.current_revision(settings.database_url)} ({_safe_url(settings.database_url)})"
    )


@db_app.command("downgrade")
def downgrade(revision: str = typer.Argument(..., help="Target revision, or `base`.")) -> None:
    """Revert migrations down to REVISION."""
    settings = get_settings()
    db.downgrade(settings.database_url, revision)
    typer.echo(f"database at {db.current_revision(settings.database_url) or 'base'}")


@db_app.command("current")
def current() -> None:
    """Print the database's revision and the newest one this docsort knows."""
    settings = get_settings()
    rev = db.current_revision(settings.database_url)
    head = db.head_revision()
    state = "up to date" if rev == head else "needs `docsort db upgrade`"
    typer.echo(f"current: {rev or 'none'}  head: {head}  ({state})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
