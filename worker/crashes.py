"""Counting attempts that never ended, in the database, so that every broker has the guard.

:func:`begin` adds one to a key's count and commits before the attempt starts; :func:`end` removes the
key once the attempt ended (whatever its result). A process that dies during the attempt (a codec
crash, the out-of-memory killer, SIGKILL) cannot remove it, so the count left is the number of deaths.
Used for a content being decoded (:mod:`worker.poison`) and a message being run (:mod:`worker.tasks`).
Keys untouched for :data:`KEEP_DAYS` are dropped.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from schema.db import session_scope
from schema.tables import CrashCount, utcnow

KEEP_DAYS = 7


def _upsert(session: Session, key: str) -> Any:
    now = utcnow()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(CrashCount).values(key=key, count=1, updated_at=now)
    return stmt.on_conflict_do_update(
        index_elements=["key"], set_={"count": CrashCount.count + 1, "updated_at": now}
    )


def begin(sessions: sessionmaker[Session], key: str) -> int:
    """Count one attempt of ``key`` (committed at once); how many attempts it has now, this one included."""
    with session_scope(sessions) as session:
        session.execute(_upsert(session, key))
        count = session.scalar(select(CrashCount.count).where(CrashCount.key == key))
        session.execute(
            delete(CrashCount).where(CrashCount.updated_at < utcnow() - timedelta(days=KEEP_DAYS))
        )
    return int(count or 1)


def end(sessions: sessionmaker[Session], key: str) -> None:
    """The attempt ended and its process lived: forget the key."""
    with session_scope(sessions) as session:
        session.execute(delete(CrashCount).where(CrashCount.key == key))


def count_of(sessions: sessionmaker[Session], key: str) -> int:
    """Attempts of ``key`` that never ended (0: none)."""
    with session_scope(sessions) as session:
        return int(session.scalar(select(CrashCount.count).where(CrashCount.key == key)) or 0)
