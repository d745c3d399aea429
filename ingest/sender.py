"""Sending jobs through the broker: the classify job every door ends in, and the job callback."""

from __future__ import annotations

from typing import Any, Protocol

from celery import Celery

from schema.messages import CLASSIFY_TASK, ClassifyJob

CALLBACK_TASK = "docsort.callback.v1"


class JobSender(Protocol):
    def send_classify(self, job: ClassifyJob) -> None: ...

    def send_callback(self, job_id: str) -> None: ...


def classify_message(job: ClassifyJob) -> dict[str, Any]:
    """The keyword arguments of a :data:`CLASSIFY_TASK` message: ``{"job": <ClassifyJob as JSON>}``."""
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

    def send_classify(self, job: ClassifyJob) -> None:
        self.app.send_task(CLASSIFY_TASK, kwargs=classify_message(job), queue=self.queue, serializer="json")

    def send_callback(self, job_id: str) -> None:
        self.app.send_task(CALLBACK_TASK, kwargs={"job_id": job_id}, queue=self.queue, serializer="json")

    def close(self) -> None:
        self.app.close()
