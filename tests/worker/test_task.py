"""The Celery task run in this process (no broker): invalid messages, unusable models, poison jobs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from schema.enums import DocumentState
from schema.messages import ClassifyJob
from schema.tables import Document
from tests.support.jobs import admitted
from tests.support.worker import write_page
from worker import tasks
from worker.context import WorkerContext
from worker.settings import WorkerSettings


@pytest.fixture
def fresh_context(worker_settings: WorkerSettings, monkeypatch: pytest.MonkeyPatch) -> WorkerSettings:
    monkeypatch.setattr(tasks, "_context", None)
    return worker_settings


def _recorded(job: dict[str, Any]) -> dict[str, Any]:
    """The job as the Celery door records it (document ids set), as a message's ``job``."""
    ctx = tasks.get_context()
    return admitted(ctx.sessions, ClassifyJob.model_validate(job), ctx.settings).model_dump(mode="json")


def _documents(ctx: WorkerContext) -> list[Document]:
    with ctx.sessions() as s:
        return list(s.scalars(select(Document)))


def test_task_with_unknown_model_records_failed_documents(
    fresh_context: WorkerSettings, tmp_path: Path
) -> None:
    page = write_page(tmp_path / "p.png", 0)
    job = {"documents": [{"path": str(page)}], "model_name": "nope"}
    result = tasks.run.apply(kwargs={"job": _recorded(job)}).get()
    assert result["status"] == "failed" and "no active version of model nope" in result["reason"]
    (doc,) = _documents(tasks.get_context())
    assert doc.state == DocumentState.failed and "nope" in (doc.error or "")


def test_task_refuses_invalid_message_without_records(fresh_context: WorkerSettings) -> None:
    result = tasks.run.apply(kwargs={"job": {"documents": []}}).get()
    assert result["status"] == "invalid" and "documents" in result["error"]
    assert _documents(tasks.get_context()) == []


def test_task_accepts_job_fields_as_kwargs(fresh_context: WorkerSettings, tmp_path: Path) -> None:
    page = write_page(tmp_path / "p.png", 255)
    result = tasks.run.apply(kwargs=_recorded({"documents": [{"path": str(page)}], "on_done": "keep"})).get()
    assert result["status"] == "ok" and result["auto"] == 1


def test_job_whose_worker_died_too_often_is_failed_not_run_again(
    fresh_context: WorkerSettings, redis_url: str, tmp_path: Path
) -> None:
    page = write_page(tmp_path / "p.png", 0)
    task_id = f"test-{uuid.uuid4()}"
    for _ in range(tasks.MAX_DELIVERIES):  # deaths counted in the database, as a killed process leaves them
        tasks.count_delivery(tasks.get_context(), tasks.delivery_key(task_id, 0))
    job = _recorded({"documents": [{"path": str(page)}]})
    result = tasks.run.apply(kwargs={"job": job}, task_id=task_id).get()
    assert result["status"] == "failed" and "died 3 times" in result["reason"]
    (doc,) = _documents(tasks.get_context())
    assert doc.state == DocumentState.failed
    assert page.exists()  # the file named is never moved: docsort's copy went to the error area
    assert [p.name for p in fresh_context.error_dir.iterdir() if p.suffix == ".png"] == [
        f"p-{doc.sha256[:10]}.png"
    ]


def test_transient_database_fault_is_retried_then_given_up(
    fresh_context: WorkerSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from celery.exceptions import Retry
    from sqlalchemy.exc import OperationalError

    from worker.settings import get_worker_settings

    monkeypatch.setenv("DOCSORT_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    monkeypatch.setenv("DOCSORT_MAX_RETRIES", "2")
    get_worker_settings.cache_clear()
    job = {"documents": [{"path": str(write_page(tmp_path / "p.png", 0)), "document_id": 1}]}
    with pytest.raises(Retry) as retry:
        tasks.run.apply(kwargs={"job": job}, retries=0, throw=True)
    assert isinstance(retry.value.exc, OperationalError) and 1.0 <= float(retry.value.when or 0) <= 3.0
    with pytest.raises(Retry) as retry:
        tasks.run.apply(kwargs={"job": job}, retries=1, throw=True)
    assert 3.0 <= float(retry.value.when or 0) <= 5.0  # exponential backoff
    # the last retry gives up: it tries to record the failure (impossible here: the database is down)
    with pytest.raises(OperationalError):
        tasks.run.apply(kwargs={"job": job}, retries=2, throw=True)
    get_worker_settings.cache_clear()


def test_job_with_unrecorded_files_is_refused_without_records(
    fresh_context: WorkerSettings, tmp_path: Path
) -> None:
    page = write_page(tmp_path / "p.png", 0)
    result = tasks.run.apply(kwargs={"job": {"documents": [{"path": str(page)}]}}).get()
    assert result["status"] == "invalid" and "docsort.classify.v1" in result["error"]
    assert _documents(tasks.get_context()) == [] and page.exists()
