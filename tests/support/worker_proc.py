"""Start a real ``docsort worker`` subprocess on a unique queue, wait until it is ready, stop or kill it.

Reusable by any suite::

    from tests.support.worker_proc import docsort_worker  # noqa: F401  (the fixture)

    def test_x(docsort_worker, settings, unique_queue):
        w = docsort_worker(settings, queue=unique_queue)       # started and ready
        w.send_job(ClassifyJob(...))                           # or any sender on w.queue
        w.wait_for_log("job.processed")

The worker runs in its own process group with the settings given (every ``DOCSORT_*`` variable of the
test process is replaced by them), logs to a file under its data folder, and is stopped at the end of
the test (SIGKILL: by then its jobs are over; ``stop()`` gives a warm shutdown where a test needs one).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
READY = "worker.ready"


def settings_env(settings: BaseSettings | Mapping[str, Any], **overrides: Any) -> dict[str, str]:
    """``DOCSORT_*`` variables that reproduce ``settings`` (fields left None are omitted)."""
    values = dict(settings) if isinstance(settings, Mapping) else settings.model_dump()
    values.update(overrides)
    return {f"DOCSORT_{k.upper()}": str(v) for k, v in values.items() if v is not None}


class WorkerProcess:
    """A running ``docsort worker``."""

    def __init__(
        self, proc: subprocess.Popen[bytes], queue: str, log_path: Path, env: dict[str, str]
    ) -> None:
        self.proc = proc
        self.queue = queue
        self.log_path = log_path
        self.env = env

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 60.0, count: int = 1) -> str:
        """Wait until ``text`` appears ``count`` times in the log; fail with the log's tail if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if log.count(text) >= count:
                return log
            if not self.alive():
                raise AssertionError(
                    f"worker exited ({self.proc.returncode}) before {text!r}:\n{log[-4000:]}"
                )
            time.sleep(0.1)
        raise AssertionError(
            f"no {text!r} x{count} in the worker log after {timeout}s:\n{self.log()[-4000:]}"
        )

    def wait_until(
        self, condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if not self.alive():
                raise AssertionError(f"worker exited while waiting for {what}:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        raise AssertionError(f"{what} not reached after {timeout}s:\n{self.log()[-4000:]}")

    def children(self) -> list[int]:
        """Pool process ids (the prefork children of the main worker process)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except (FileNotFoundError, ValueError):
            return []

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children) at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM to the main process (warm shutdown: the running job finishes), SIGKILL after ``grace``."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # pool children left behind, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        return self.proc.returncode


def send_classify(broker_url: str, queue: str, job: Mapping[str, Any], *, task_id: str | None = None) -> str:
    """Send ``docsort.classify.v1`` the documented way (JSON, kwargs ``{"job": ...}``) from any process."""
    from celery import Celery

    client = Celery("docsort-test-sender", broker=broker_url, set_as_current=False)
    client.conf.update(task_serializer="json", accept_content=["json"])
    try:
        result = client.send_task(
            "docsort.classify.v1", kwargs={"job": dict(job)}, queue=queue, task_id=task_id, serializer="json"
        )
        return str(result.id)
    finally:
        client.close()


def start_worker(
    env: Mapping[str, str],
    queue: str,
    log_path: Path,
    *,
    concurrency: int = 1,
    args: tuple[str, ...] = (),
    ready_timeout: float = 90.0,
    wait_for: tuple[str, ...] = (READY,),
) -> WorkerProcess:
    """Start ``docsort worker -Q queue`` with only the ``DOCSORT_*`` variables of ``env``; wait for ready."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("DOCSORT_") or k.startswith("DOCSORT_TEST_")
    }
    clean.pop("PROMETHEUS_MULTIPROC_DIR", None)
    full_env = {**clean, **env, "DOCSORT_QUEUE": queue, "PYTHONUNBUFFERED": "1"}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH", "")]))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "docsort.cli",
        "worker",
        "--queues",
        queue,
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{queue}-{uuid.uuid4().hex[:6]}@%h",
        *args,
    ]
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            command,
            env=full_env,
            cwd=str(log_path.parent),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = WorkerProcess(proc, queue, log_path, full_env)
    try:
        for marker in wait_for:
            worker.wait_for_log(marker, timeout=ready_timeout)
    except BaseException:
        worker.stop(grace=5)
        raise
    return worker


StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def docsort_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """A factory: ``docsort_worker(settings, queue=..., concurrency=1, args=(), **setting_overrides)``.

    Every worker it started is stopped when the test ends.
    """
    started: list[WorkerProcess] = []

    def start(
        settings: BaseSettings | Mapping[str, Any],
        *,
        queue: str,
        concurrency: int = 1,
        args: tuple[str, ...] = (),
        wait_for: tuple[str, ...] = (READY,),
        **overrides: Any,
    ) -> WorkerProcess:
        log_path = tmp_path / "worker-logs" / f"worker-{len(started) + 1}.log"
        env = settings_env(settings, **overrides)
        worker = start_worker(env, queue, log_path, concurrency=concurrency, args=args, wait_for=wait_for)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()  # its jobs are over: no need to wait for a warm shutdown
