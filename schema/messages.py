"""The job message: the documented, versioned contract for sending work to docsort workers.

Any system may send it as a Celery message (JSON serializer) on task name :data:`CLASSIFY_TASK`,
queue ``docsort``. It carries ids and paths, never objects.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

CLASSIFY_TASK = "docsort.classify.v1"
DEFAULT_QUEUE = "docsort"


class DocumentRef(BaseModel):
    """One file to classify. ``document_id`` is set when an ingest door already recorded it."""

    path: str = Field(description="Absolute path readable by the worker (shared storage).")
    document_id: int | None = None
    sha256: str | None = None
    source: str = "celery"
    source_ref: str = ""
    filename: str | None = None


class ClassifyJob(BaseModel):
    """Payload of :data:`CLASSIFY_TASK`: one or more documents, classified as one batch of pages."""

    v: Literal[1] = 1
    job_id: str | None = None
    documents: list[DocumentRef] = Field(min_length=1)
    model_name: str | None = Field(None, description="Model to use; default: the active one.")
    on_done: Literal["archive", "delete", "keep"] = "keep"
