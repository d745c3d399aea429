"""What a job runs with (:class:`WorkerContext`, one per process) and the files it works on."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from worker.delivery import QueueSender
from worker.poison import DecodeGuard
from worker.registry import ModelCache
from worker.settings import WorkerSettings


@dataclass
class WorkerContext:
    """What a job needs besides its message; one per worker process."""

    settings: WorkerSettings
    sessions: sessionmaker[Session]
    models: ModelCache
    worker_name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    sender: QueueSender | None = None
    send_callback: Callable[[str], None] | None = None
    pid: int = field(default_factory=os.getpid)
    decode_guard: DecodeGuard | None = None  # counts decoding attempts that killed the process


@dataclass
class JobFile:
    """One recorded file of a job (a ``documents`` row) and where its bytes are now."""

    document_id: int
    sha256: str
    filename: str
    path: Path | None  # the file, if it still exists
    finished: bool
    split: str | None = None  # the separation rules its door chose (None: the worker's default)
    repeat: bool = False  # the same content appeared earlier in this job


@dataclass
class JobOutcome:
    documents: int = 0
    pages: int = 0
    auto: int = 0
    review: int = 0
    failed: int = 0
    already_done: int = 0
