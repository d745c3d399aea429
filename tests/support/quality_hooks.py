"""The quality hooks wired into the job runner for tests, until ``worker/runner.py`` calls them itself.

The runner is to call, in :func:`worker.runner.run_job`:

- ``record_shadow(ctx, model, decoded)`` right after ``scores = infer(model, ...)``;
- ``audit_file(ctx, job_file, decoded_file, file_scores, model)`` right after ``record_file(...)``.

:func:`wire` wraps the runner's own steps (``resolve_files``, ``decode_files``, ``infer``,
``record_file``) to make exactly those calls, and does nothing for a hook the runner's source already
calls. In-process tests call it with ``monkeypatch``; a worker process gets it through
``tests/support/quality_inject/sitecustomize.py`` on its PYTHONPATH (:func:`inject`).
"""

from __future__ import annotations

import contextvars
import inspect
import os
from pathlib import Path
from typing import Any

import pytest

from worker import runner
from worker.audit import audit_file
from worker.shadow import record_shadow

INJECT = Path(__file__).with_name("quality_inject")
_ctx: contextvars.ContextVar[Any] = contextvars.ContextVar("ctx")
_decoded: contextvars.ContextVar[Any] = contextvars.ContextVar("decoded")


def wired_in_runner(hook: str) -> bool:
    return f"{hook}(" in inspect.getsource(runner)


def wire(setattr_: Any = setattr) -> None:
    """Wrap the runner's steps so that each job makes the hook calls the runner does not make yet."""
    shadow, audit = not wired_in_runner("record_shadow"), not wired_in_runner("audit_file")
    resolve, decode, infer, record = (
        runner.resolve_files,
        runner.decode_files,
        runner.infer,
        runner.record_file,
    )

    def resolve_files(ctx: Any, job: Any) -> Any:
        _ctx.set(ctx)
        return resolve(ctx, job)

    def decode_files(*args: Any, **kwargs: Any) -> Any:
        decoded, failures = decode(*args, **kwargs)
        _decoded.set(decoded)
        return decoded, failures

    def infer_and_shadow(model: Any, files: Any) -> Any:
        scores = infer(model, files)
        if shadow:
            record_shadow(_ctx.get(), model, _decoded.get())
        return scores

    def record_and_audit(sessions: Any, job_file: Any, decoded: Any, scores: Any, *rest: Any) -> Any:
        kinds = record(sessions, job_file, decoded, scores, *rest)
        if audit:
            audit_file(
                _ctx.get(), job_file, decoded, scores, rest[-2]
            )  # rest: own, plan, explained, model, name
        return kinds

    for name, new in (
        ("resolve_files", resolve_files),
        ("decode_files", decode_files),
        ("infer", infer_and_shadow),
        ("record_file", record_and_audit),
    ):
        setattr_(runner, name, new)


@pytest.fixture
def quality_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this test, jobs run in this process and worker processes started from it call the hooks."""
    wire(monkeypatch.setattr)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(INJECT), os.environ.get("PYTHONPATH")]))
    )
