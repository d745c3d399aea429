"""Child processes docsort starts itself (the demo's worker, watcher and web server, the benchmarks'
workers): each in its own session and process group, logged to a file, stopped cleanly.

A child is asked to die with its parent (Linux ``PR_SET_PDEATHSIG``), and is stopped with SIGTERM, then
its whole process group with SIGKILL after a grace period, so that no pool process or grandchild is
left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from schema.errors import DocsortError
from schema.logs import get_logger

log = get_logger(__name__)
PR_SET_PDEATHSIG = 1
WORKER_READY = "worker.ready"


class ProcessFailed(DocsortError):
    """A child process exited, or did not get ready in time; the message quotes its log."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def docsort_command(*args: str) -> list[str]:
    """``docsort ARGS`` run by this Python (no dependence on PATH)."""
    return [sys.executable, "-m", "docsort.cli", *args]


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def settings_env(settings: BaseSettings | Mapping[str, Any], **overrides: Any) -> dict[str, str]:
    """``DOCSORT_*`` variables that reproduce ``settings`` (fields left None are omitted)."""
    values = dict(settings) if isinstance(settings, Mapping) else settings.model_dump()
    values.update(overrides)
    return {f"DOCSORT_{k.upper()}": _env_value(v) for k, v in values.items() if v is not None}


def _env_value(value: Any) -> str:
    """A setting as the environment spells it (a list: comma-separated)."""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its ``DOCSORT_*`` settings, then ``env`` on top."""
    kept = {
        k: v for k, v in os.environ.items() if not k.startswith("DOCSORT_") or k.startswith("DOCSORT_TEST_")
    }
    kept.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return {**kept, **env, "PYTHONUNBUFFERED": "1"}


class Child:
    """One running child process whose output goes to ``log_path``."""

    def __init__(self, name: str, command: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path):
        self.name = name
        self.log_path = log_path
        self.env = dict(env)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                list(command),
                env=self.env,
                cwd=str(cwd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        log.info("process.started", name=name, pid=self.proc.pid, command=" ".join(command))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def failure(self, what: str) -> ProcessFailed:
        return ProcessFailed(
            f"{self.name} {what} (exit code {self.proc.poll()}); its log is {self.log_path}:\n"
            f"{log_tail(self.log_path, 40)}"
        )

    def wait_until(self, ready: Callable[[], bool], timeout: float = 60.0, what: str = "ready") -> None:
        """Poll ``ready`` until it holds; ProcessFailed if the process exits first or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if not self.alive():
                raise self.failure(f"exited before {what}")
            time.sleep(0.1)
        raise self.failure(f"not {what} after {timeout:.0f} s")

    def wait_for_log(self, marker: str, timeout: float = 60.0, count: int = 1) -> str:
        """Wait until ``marker`` appears ``count`` times in the log; the log then."""
        self.wait_until(lambda: self.log().count(marker) >= count, timeout, f"{marker!r} x{count} in its log")
        return self.log()

    def children(self) -> list[int]:
        """The ids of this process's children (a worker's pool processes)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except (FileNotFoundError, ValueError):
            return []

    def kill(self) -> None:
        """SIGKILL the whole process group at once."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM (finish the work in hand), then SIGKILL to the whole process group."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # pool processes or grandchildren left behind
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        log.info("process.stopped", name=self.name, pid=self.proc.pid, returncode=self.proc.returncode)
        return self.proc.returncode


class WorkerProcess(Child):
    """A running ``docsort worker`` consuming ``queue``."""

    def __init__(self, queue: str, command: Sequence[str], env: Mapping[str, str], log_path: Path):
        super().__init__(f"worker {queue}", command, env, log_path.parent, log_path)
        self.queue = queue


def start_worker(
    env: Mapping[str, str],
    queue: str,
    log_path: Path,
    *,
    concurrency: int = 1,
    args: tuple[str, ...] = (),
    ready_timeout: float = 90.0,
    wait_for: tuple[str, ...] = (WORKER_READY,),
) -> WorkerProcess:
    """Start ``docsort worker -Q queue`` with only the ``DOCSORT_*`` variables of ``env``; wait for ready."""
    full_env = clean_env({**env, "DOCSORT_QUEUE": queue})
    command = docsort_command(
        "worker",
        "--queues",
        queue,
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{queue}-{uuid.uuid4().hex[:6]}@%h",
        *args,
    )
    worker = WorkerProcess(queue, command, full_env, log_path)
    try:
        for marker in wait_for:
            worker.wait_for_log(marker, timeout=ready_timeout)
    except BaseException:
        worker.stop(grace=5)
        raise
    return worker
