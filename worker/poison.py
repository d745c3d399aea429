"""Poison pages: a file whose decoding kills the worker process is set aside after a few crashes.

A decoder that raises is handled where it raises. One that takes the whole process down (a crash in a
codec, the kernel's out-of-memory killer) cannot be caught inside that process: Celery puts the job
back on the queue (``task_reject_on_worker_lost``) and the next process would decode the same file and
die again. So each document's decoding is bracketed by a counter in Redis, keyed by its content:
incremented before, removed after, whatever the result. A counter still there when the document comes
round again means that many processes died while decoding it. After :data:`MAX_DECODE_CRASHES` such
deaths the document is failed ("dead-lettered") with that reason, its file goes to the error area, and
the other documents of the job are sorted as usual. Without Redis the guard is off (never blocks a job).
"""

from __future__ import annotations

from typing import Protocol

import redis

from schema.logs import get_logger

log = get_logger(__name__)

MAX_DECODE_CRASHES = 2
KEY_TTL_S = 7 * 24 * 3600


class DecodeGuard(Protocol):
    def start(self, sha256: str) -> int:
        """Count one decoding attempt of this content; return how many earlier attempts never ended."""
        ...

    def finish(self, sha256: str) -> None:
        """The attempt ended (decoded, or failed with an error): the process survived it."""
        ...


class RedisDecodeGuard:
    """The decoding counters in Redis (the broker's server), shared by every worker process and host."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @staticmethod
    def key(sha256: str) -> str:
        return f"docsort:decoding:{sha256}"

    def start(self, sha256: str) -> int:
        try:
            attempts = int(self.client.incr(self.key(sha256)))
            self.client.expire(self.key(sha256), KEY_TTL_S)
        except redis.RedisError as exc:
            log.warning("poison.guard_unavailable", error=str(exc))
            return 0
        return attempts - 1

    def finish(self, sha256: str) -> None:
        try:
            self.client.delete(self.key(sha256))
        except redis.RedisError as exc:
            log.warning("poison.guard_unavailable", error=str(exc))


def dead_letter_reason(crashes: int) -> str:
    return (
        f"dead-lettered: decoding this file crashed the worker process {crashes} times "
        "(a decoder crash or running out of memory); it is not decoded again"
    )
