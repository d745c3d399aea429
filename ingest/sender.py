"""Sending jobs through the broker: the recorded job every door ends in, and the job callback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from celery import Celery

from schema.messages import CALLBACK_TASK, CLASSIFY_TASK, RUN_TASK, ClassifyJob


class JobSender(Protocol):
    def send_job(self, job: ClassifyJob) -> None: ...

    def send_callback(self, job_id: str) -> None: ...


def job_message(job: ClassifyJob) -> dict[str, Any]:
    """The keyword arguments of a job message: ``{"job": <ClassifyJob as JSON>}``."""
    return {"job": job.model_dump(mode="json")}


class CelerySender:
    """Sends by task name through a small Celery client (JSON only); the worker code is not imported."""

    def __init__(self, broker_url: str, queue: str) -> None:
        self.queue = queue
        self.app = Celery("docsort-ingest", broker=broker_url, set_as_current=False)
        self.app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            broker_connection_retry_on_startup=True,
        )

    def send_job(self, job: ClassifyJob) -> None:
        """A recorded job (every file has its document id) to the worker: :data:`RUN_TASK`."""
        self.app.send_task(RUN_TASK, kwargs=job_message(job), queue=self.queue, serializer="json")

    def send_callback(self, job_id: str) -> None:
        self.app.send_task(CALLBACK_TASK, kwargs={"job_id": job_id}, queue=self.queue, serializer="json")

    def close(self) -> None:
        self.app.close()


def send_classify(broker_url: str, queue: str, job: Mapping[str, Any], *, task_id: str | None = None) -> str:
    """Send a job to the Celery door the documented way: task :data:`CLASSIFY_TASK`, JSON, kwargs
    ``{"job": ...}`` naming files by path; the task id."""
    client = Celery("docsort-client", broker=broker_url, set_as_current=False)
    client.conf.update(task_serializer="json", accept_content=["json"])
    try:
        result = client.send_task(
            CLASSIFY_TASK, kwargs={"job": dict(job)}, queue=queue, task_id=task_id, serializer="json"
        )
        return str(result.id)
    finally:
        client.close()
