"""Messages and task names: the documented, versioned contracts between docsort's processes.

Any system may send a :class:`ClassifyJob` as a Celery message (JSON serializer) on task name
:data:`CLASSIFY_TASK`, queue ``docsort``: that is the Celery door (``ingest``), which records the files
and hands the job on. Messages carry ids and paths, never objects.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from schema.split import canonical_split

CLASSIFY_TASK = "docsort.classify.v1"
"""The Celery door: a job naming files by path (ingest records them, then sends :data:`RUN_TASK`)."""
RUN_TASK = "docsort.run.v1"
"""A job whose files are recorded (every reference has a ``document_id``): the worker runs it."""
CALLBACK_TASK = "docsort.callback.v1"
"""POST a finished job's result to its callback URL (kwargs ``{"job_id": ...}``)."""
ROUTED_TASK = "docsort.routed.v1"
"""What a queue destination receives for each delivered item (kwargs: the item's payload)."""
DEFAULT_QUEUE = "docsort"


class DocumentRef(BaseModel):
    """One file to classify. ``document_id`` is set when an ingest door already recorded it."""

    path: str = Field(description="Absolute path readable by the worker (shared storage).")
    document_id: int | None = None
    sha256: str | None = None
    source: str = "celery"
    source_ref: str = ""
    filename: str | None = None
    split: str | None = Field(None, description="Separation rules for this file (default: the job's).")

    _split = field_validator("split")(lambda v: canonical_split(v))


class ClassifyJob(BaseModel):
    """Payload of :data:`CLASSIFY_TASK`: one or more documents, classified as one batch of pages."""

    v: Literal[1] = 1
    job_id: str | None = None
    documents: list[DocumentRef] = Field(min_length=1)
    model_name: str | None = Field(None, description="Model to use; default: the active one.")
    on_done: Literal["archive", "delete", "keep"] = "keep"
    split: str | None = Field(
        None,
        description="Separation rules (schema.split): none, blank, barcode, class, pages:N, drop-blank, "
        "comma-separated; default: the worker's DOCSORT_SPLIT.",
    )

    _split = field_validator("split")(lambda v: canonical_split(v))


def job_from_task_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ClassifyJob:
    """The job of a task message: kwargs ``{"job": ...}``, one positional argument, or the job's fields
    as kwargs; raises pydantic's ValidationError."""
    if args:
        return ClassifyJob.model_validate(args[0])
    if "job" in kwargs:
        return ClassifyJob.model_validate(kwargs["job"])
    return ClassifyJob.model_validate(kwargs)
