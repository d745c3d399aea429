"""``docsort operator ...`` and ``docsort export-labels``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import typer
from sqlalchemy.orm import Session

from review.export import export_labels, labelled_pages
from review.security import create_operator, set_password
from review.settings import ReviewSettings, review_settings
from schema import db
from schema.logs import configure_logging
from schema.tables import Operator

operator_app = typer.Typer(
    help="Operator accounts of the review page.", no_args_is_help=True, rich_markup_mode=None
)


def _settings() -> ReviewSettings:
    return review_settings()


def _read_password(name: str, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    return str(password)


def _with_password(name: str, from_stdin: bool, apply: Callable[[Session, str], Operator]) -> Operator:
    """Read a password for ``name`` and ``apply`` it on the migrated database."""
    settings = _settings()
    db.require_migrated(settings.database_url)
    password = _read_password(name, from_stdin)
    sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
    with sessions() as session:
        return apply(session, password)


@operator_app.command("create")
def operator_create(
    name: str = typer.Argument(..., help="The operator's login name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin's first line."
    ),
    update: bool = typer.Option(
        False, "--update", help="Set a new password if the operator exists (its sessions end)."
    ),
) -> None:
    """Create an operator account (the password is stored as an argon2 hash)."""

    operator = _with_password(
        name, password_stdin, lambda session, pw: create_operator(session, name, pw, replace=update)
    )
    typer.echo(f"operator {operator.name!r} ready (id {operator.id})")


@operator_app.command("passwd")
def operator_passwd(
    name: str = typer.Argument(..., help="The operator's login name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the new password from stdin's first line."
    ),
) -> None:
    """Set a new password for an operator; every session of the operator ends (logged out everywhere)."""

    operator = _with_password(name, password_stdin, lambda s, pw: set_password(s, name, pw))
    typer.echo(f"operator {operator.name!r}: new password set; every session ended")


@operator_app.command("list")
def operator_list() -> None:
    """List operator accounts."""
    from sqlalchemy import select

    settings = _settings()
    sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
    with sessions() as session:
        for operator in session.scalars(select(Operator).order_by(Operator.name)):
            state = "active" if operator.active else "disabled"
            typer.echo(f"{operator.id}\t{operator.name}\t{state}\t{operator.created_at:%Y-%m-%d}")


def export_labels_command(
    out_dir: Path = typer.Argument(..., help="Folder to fill: one sub-folder per class."),
    since: datetime | None = typer.Option(
        None,
        "--since",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
        help="Only pages decided at or after this time (UTC).",
    ),
) -> None:
    """Write the reviewed pages (not the rejected) into OUT_DIR/<class>/, ready for `docsort train`."""

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    db.require_migrated(settings.database_url)
    since_utc = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
    with sessions() as session:
        pages = labelled_pages(session, since_utc)
    report = export_labels(pages, settings.dir("review"), out_dir, progress=sys.stderr.isatty())
    per_class = ", ".join(f"{k}: {v}" for k, v in sorted(report.per_class.items())) or "none"
    typer.echo(f"{report.written} written, {report.unchanged} already there ({per_class}) in {out_dir}")
    for missing in report.missing:
        typer.echo(f"warning: no image for {missing}; skipped", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("export-labels")(export_labels_command)
    app.add_typer(operator_app, name="operator")
