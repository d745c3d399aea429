"""Engines, sessions and migrations. Data access takes the session explicitly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from schema.errors import DatabaseNotReady

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings docsort relies on: SQLite foreign keys and WAL, pool pre-ping."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def require_migrated(url: str) -> None:
    """Raise :class:`DatabaseNotReady` with one clear line unless the database answers and is at head."""
    try:
        current = current_revision(url)
    except SQLAlchemyError as exc:
        raise DatabaseNotReady(f"the database cannot be reached: {getattr(exc, 'orig', exc)}") from exc
    head = head_revision()
    if current != head:
        raise DatabaseNotReady(
            f"the database is at revision {current or 'none'}, docsort needs {head}: run `docsort db upgrade`"
        )


def insert_ignore(
    session: Session, table: type[DeclarativeBase], values: dict[str, Any], keys: list[str]
) -> bool:
    """INSERT the row unless one with the same ``keys`` exists (PostgreSQL and SQLite); True if inserted."""
    return insert_ignore_many(session, table, [values], keys) == 1


def _insert_ignoring(session: Session, core: Table, keys: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` in the session's dialect."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(core).on_conflict_do_nothing(index_elements=keys)
    if dialect == "sqlite":
        return sqlite.insert(core).on_conflict_do_nothing(index_elements=keys)
    raise ValueError(f"unsupported database dialect {dialect!r}")  # pragma: no cover - PostgreSQL, SQLite


def insert_ignore_many(
    session: Session, table: type[DeclarativeBase], rows: list[dict[str, Any]], keys: list[str]
) -> int:
    """INSERT the rows, in one statement, but those whose ``keys`` exist already; how many went in.

    The rows are parameters of one constant statement (SQLAlchemy's "insertmanyvalues" sends them as one
    multi-row INSERT), so the statement is compiled once per process, not once per call as a statement
    with the rows' values in it is. Every row must have the same keys."""
    core: Table = table.__table__  # type: ignore[assignment]
    # RETURNING says which rows went in on both databases (rowcount is -1 on some drivers).
    return len(insert_ignore_returning(session, table, rows, keys, [c.name for c in core.primary_key]))


def insert_ignore_returning(
    session: Session,
    table: type[DeclarativeBase],
    rows: list[dict[str, Any]],
    keys: list[str],
    columns: list[str],
) -> list[tuple[Any, ...]]:
    """INSERT the rows (all with the same keys) but those whose ``keys`` exist already; ``columns`` of the
    rows that went in, in no stated order. Sent as one statement with the rows as its parameters (SQLAlchemy's
    "insertmanyvalues"), so that the statement is compiled once whatever the number of rows."""
    if not rows:
        return []
    core: Table = table.__table__  # type: ignore[assignment]
    stmt = _insert_ignoring(session, core, keys).returning(*(core.c[name] for name in columns))
    return [tuple(row) for row in session.execute(stmt, rows).all()]
