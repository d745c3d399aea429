"""Settings of the worker deployable: the shared ones plus model, threads, batching, routing, metrics.

Every field reads from the environment with the ``DOCSORT_`` prefix (``DOCSORT_PROVIDER=cuda``,
``DOCSORT_CONCURRENCY=4`` ...). ``docsort worker`` options override them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from schema.errors import SettingsInvalid
from schema.messages import DEFAULT_QUEUE
from schema.settings import DocsortSettings, describe_validation_error

Provider = Literal["cpu", "cuda", "auto"]


class WorkerSettings(DocsortSettings):
    """Settings of a worker process (and of ``docsort classify``)."""

    provider: Provider = Field(
        "cpu", description="ONNX Runtime device: `cpu`, `cuda` (falls back to CPU if absent) or `auto`."
    )
    concurrency: int = Field(1, ge=1, le=64, description="Worker processes (one ONNX session each).")
    threads: int = Field(
        0, ge=0, le=256, description="Intra-op threads per process; 0: cores divided by concurrency."
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Most pages in one ONNX Runtime run.")
    queue: str = Field(DEFAULT_QUEUE, min_length=1, description="Queue(s) to consume, comma-separated.")
    confidence: float | None = Field(
        None, ge=0.0, le=1.0, description="Overrides the manifest's confidence threshold."
    )
    margin: float | None = Field(None, ge=0.0, le=1.0, description="Overrides the manifest's minimum margin.")
    model_name: str | None = Field(None, description="Model to serve; default: the active one.")
    model_dir: Path | None = Field(
        None, description="A fixed model version folder (bypasses the registry's active version)."
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus metrics port; 0: off.")
    visibility_timeout: int = Field(
        3600, ge=1, description="Seconds before an unacknowledged job goes back to the queue."
    )
    task_time_limit: int = Field(1800, ge=1, description="Hard time limit of one job, seconds.")
    max_retries: int = Field(5, ge=0, le=50, description="Retries of a job on a transient fault.")
    retry_backoff_s: float = Field(2.0, gt=0.0, description="First retry delay; doubles each retry.")
    review_max_side: int = Field(1600, ge=64, le=10000, description="Longest side of saved review images.")

    @model_validator(mode="after")
    def _check_worker(self) -> WorkerSettings:
        if self.visibility_timeout <= self.task_time_limit:
            raise ValueError(
                f"DOCSORT_VISIBILITY_TIMEOUT={self.visibility_timeout} must exceed "
                f"DOCSORT_TASK_TIME_LIMIT={self.task_time_limit}, or a running job is handed out twice"
            )
        if self.model_dir is not None and not (self.model_dir / "manifest.json").is_file():
            raise ValueError(f"DOCSORT_MODEL_DIR={self.model_dir}: not a model version folder (no manifest)")
        return self

    @property
    def queues(self) -> list[str]:
        return [q.strip() for q in self.queue.split(",") if q.strip()]

    def intra_op_threads(self) -> int:
        """Threads per ONNX session so that processes x threads = cores."""
        if self.threads:
            return self.threads
        return max(1, (os.cpu_count() or 1) // self.concurrency)


def load_worker_settings(**overrides: object) -> WorkerSettings:
    """Worker settings from the environment; :class:`SettingsInvalid` says what to fix."""
    try:
        return WorkerSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsInvalid(describe_validation_error(exc)) from exc


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    return load_worker_settings()
