"""``docsort apikey``: clients of the jobs API and their keys (printed once, stored hashed)."""

from __future__ import annotations

import typer
from sqlalchemy.orm import Session, sessionmaker

from ingest.api_keys import create_client, revoke_client, rotate_client
from ingest.settings import get_ingest_settings
from ingest.signing import callback_secret
from schema import db
from schema.tables import ApiClient

apikey_app = typer.Typer(
    help="API clients of the jobs API (/v1) and their keys.", no_args_is_help=True, rich_markup_mode=None
)


def _sessions() -> sessionmaker[Session]:

    settings = get_ingest_settings()
    return db.make_sessionmaker(db.make_engine(settings.database_url))


def _print_key(name: str, key: str, version: int) -> None:
    secret = callback_secret(get_ingest_settings().secret_key, name, version)
    typer.echo(f"API key for {name} (shown once; only its hash is kept):\n{key}")
    typer.echo(f"callback signing secret (X-Docsort-Signature, HMAC-SHA256 of the body):\n{secret}")


@apikey_app.command("create")
def create(name: str = typer.Argument(..., help="Name of the client system.")) -> None:
    """Make a client and print its key once."""

    with db.session_scope(_sessions()) as session:
        client, key = create_client(session, name)
        version = client.secret_version or 0
    _print_key(name, key, version)


@apikey_app.command("rotate")
def rotate(name: str = typer.Argument(..., help="Name of the client system.")) -> None:
    """Give a client a new key and callback secret (the old ones stop working) and print them once."""

    with db.session_scope(_sessions()) as session:
        client, key = rotate_client(session, name)
        version = client.secret_version
    _print_key(name, key, version)


@apikey_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="Name of the client system.")) -> None:
    """Stop a client's key from working."""

    with db.session_scope(_sessions()) as session:
        revoke_client(session, name)
    typer.echo(f"revoked the key of {name}")


@apikey_app.command("list")
def list_clients() -> None:
    """Clients, their key prefixes and whether they are revoked."""
    from sqlalchemy import select

    with db.session_scope(_sessions()) as session:
        for client in session.scalars(select(ApiClient).order_by(ApiClient.name)):
            state = f"revoked {client.revoked_at:%Y-%m-%d}" if client.revoked_at else "active"
            typer.echo(f"{client.name}\t{client.key_prefix}…\t{state}")


def register(app: typer.Typer) -> None:
    """Add ``docsort apikey``."""
    app.add_typer(apikey_app, name="apikey")
