"""Poison pages: a file whose decoding kills the worker process is set aside after a few crashes.

A decoder that raises is handled where it raises. One that takes the whole process down (a crash in a
codec, the kernel's out-of-memory killer) cannot be caught inside that process: the broker gives the job
back (``task_reject_on_worker_lost``) and the next process would decode the same file and die again. So
each document's decoding is bracketed by a counter in the database (:mod:`worker.crashes`), keyed by its
content: counted before, removed after, whatever the result. A count still there when the document comes
round again means that many processes died while decoding it. After :data:`MAX_DECODE_CRASHES` such
deaths the document is failed ("dead-lettered") with that reason, its file goes to the error area, and
the other documents of the job are sorted as usual. The counter lives in the database, so the guard
holds on every broker (Redis, RabbitMQ); a database that cannot be reached never blocks a job.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from schema.logs import get_logger
from worker import crashes

log = get_logger(__name__)

MAX_DECODE_CRASHES = 2


class DecodeGuard(Protocol):
    def start(self, sha256: str) -> int:
        """Count one decoding attempt of this content; return how many earlier attempts never ended."""
        ...

    def finish(self, sha256: str) -> None:
        """The attempt ended (decoded, or failed with an error): the process survived it."""
        ...


class DatabaseDecodeGuard:
    """The decoding counters in the database, shared by every worker process and host."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @staticmethod
    def key(sha256: str) -> str:
        return f"decode:{sha256}"

    def start(self, sha256: str) -> int:
        try:
            return crashes.begin(self.sessions, self.key(sha256)) - 1
        except SQLAlchemyError as exc:
            log.warning("poison.guard_unavailable", error=str(exc)[:500])
            return 0

    def finish(self, sha256: str) -> None:
        try:
            crashes.end(self.sessions, self.key(sha256))
        except SQLAlchemyError as exc:
            log.warning("poison.guard_unavailable", error=str(exc)[:500])


def dead_letter_reason(crashes: int) -> str:
    return (
        f"dead-lettered: decoding this file crashed the worker process {crashes} times "
        "(a decoder crash or running out of memory); it is not decoded again"
    )
