"""The quality hooks wired into the job runner for tests, until ``worker/runner.py`` calls them itself.

The runner is to call, in :func:`worker.runner.run_job`:

- ``audit_file(ctx, job_file, decoded_file, file_scores, model)`` right after ``record_file(...)``;
- ``record_shadow(ctx, model, decoded)`` once the loop over the files has recorded them, before the
  documents are delivered.

:func:`wire` wraps the runner's own steps (``resolve_files``, ``decode_files``, ``record_file``) to make
those calls (the shadow one file at a time), and does nothing for a hook the runner's source already
calls. With a version in shadow, a page has two predictions; the review code must take the one its
document was decided by, not the latest: until ``review/documents.py:_operator_labels`` does (a
condition on the output document's model name and version), :func:`wire` puts that condition in.
In-process tests call it with ``monkeypatch``; a worker process gets it through
``tests/support/quality_inject/sitecustomize.py`` on its PYTHONPATH (the ``quality_hooks`` fixture).
"""

from __future__ import annotations

import contextvars
import inspect
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from review import documents as review_documents
from schema.enums import DecisionOrigin
from schema.tables import OutputDocument, Page, Prediction
from worker import runner
from worker.audit import audit_file
from worker.record import decision_for
from worker.shadow import record_shadow

INJECT = Path(__file__).with_name("quality_inject")
_ctx: contextvars.ContextVar[Any] = contextvars.ContextVar("ctx")


def wired_in_runner(hook: str) -> bool:
    return f"{hook}(" in inspect.getsource(runner)


def _operator_labels(session: Session, output: OutputDocument) -> list[str | None] | None:
    """Each page's operator answer on the prediction its document was decided by (None: rejected), or
    None while a page is undecided."""
    labels: list[str | None] = []
    for number in output.pages:
        prediction = session.scalar(
            select(Prediction)
            .join(Page, Page.id == Prediction.page_id)
            .where(
                Page.document_id == output.document_id,
                Page.page_number == number,
                Prediction.model_name == output.model_name,
                Prediction.model_version == output.model_version,
            )
        )
        decision = decision_for(session, prediction.id, DecisionOrigin.operator) if prediction else None
        if decision is None:
            return None
        labels.append(decision.label)
    return labels


def wire(setattr_: Any = setattr) -> None:
    """Wrap the runner's steps so that each job makes the hook calls the runner does not make yet."""
    shadow, audit = not wired_in_runner("record_shadow"), not wired_in_runner("audit_file")
    resolve, record = runner.resolve_files, runner.record_file

    def resolve_files(ctx: Any, job: Any) -> Any:
        _ctx.set(ctx)
        return resolve(ctx, job)

    def record_and_hooks(sessions: Any, job_file: Any, decoded: Any, scores: Any, *rest: Any) -> Any:
        kinds = record(sessions, job_file, decoded, scores, *rest)
        model = rest[-2]  # rest: own decisions, plan, explained, model, worker name
        if shadow:
            record_shadow(_ctx.get(), model, [(job_file, decoded)])
        if audit:
            audit_file(_ctx.get(), job_file, decoded, scores, model)
        return kinds

    setattr_(runner, "resolve_files", resolve_files)
    setattr_(runner, "record_file", record_and_hooks)
    if "model_version" not in inspect.getsource(review_documents._operator_labels):
        setattr_(review_documents, "_operator_labels", _operator_labels)


@pytest.fixture
def quality_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this test, jobs run in this process and worker processes started from it call the hooks."""
    wire(monkeypatch.setattr)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(INJECT), os.environ.get("PYTHONPATH")]))
    )
