"""Settings of the ingest doors (watch folders, the jobs API, ``docsort submit``) and the job callback.

They extend :class:`schema.settings.DocsortSettings` and are read from the same environment (prefix
``DOCSORT_``) and ``.env`` file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from schema.errors import SettingsInvalid
from schema.messages import DEFAULT_QUEUE
from schema.settings import DocsortSettings, describe_validation_error


class IngestSettings(DocsortSettings):
    """Every ingest setting, its default and its meaning."""

    queue: str = Field(
        DEFAULT_QUEUE,
        min_length=1,
        description="Queue(s), comma-separated, as the worker's; the doors send jobs to the first.",
    )
    on_done: Literal["archive", "delete"] = Field(
        "archive", description="What the worker does with a file once its outcome is recorded."
    )
    watch_settle_seconds: float = Field(
        2.0, gt=0, description="A watched file is taken once its size and mtime held still this long."
    )
    watch_rescan_seconds: float = Field(
        30.0, gt=0, description="Full rescan of the watch folders (catches events missed or lost)."
    )
    watch_poll_ms: int = Field(1000, ge=50, description="Polling interval of `docsort watch --poll`.")
    watch_batch_files: int = Field(50, ge=1, description="Most files the watcher takes into one job.")
    docs_per_message: int = Field(8, ge=1, description="Most documents in one classify message.")
    recover_after_seconds: float = Field(
        60.0,
        ge=0,
        description="Files left in the processing area, or recorded but never sent, by an interrupted "
        "door are recovered by the watcher once they are this old.",
    )
    shared_root: Path | None = Field(
        None, description="Root of the paths the jobs API accepts (`paths`); unset: paths are refused."
    )
    api_max_upload_bytes: int = Field(
        200 * 1024 * 1024, ge=1, description="Largest request body of `POST /v1/jobs` (413 above)."
    )
    api_max_files: int = Field(100, ge=1, description="Most files (uploads or paths) in one job.")
    callback_max_retries: int = Field(8, ge=0, description="Retries of a failed job callback.")
    callback_backoff_seconds: float = Field(
        2.0, ge=0, description="First retry delay of a job callback; doubles each retry (max 1 hour)."
    )
    callback_timeout_seconds: float = Field(10.0, gt=0, description="HTTP timeout of one callback attempt.")

    @property
    def job_queue(self) -> str:
        """The queue classify jobs and callbacks are sent to."""
        return next((q.strip() for q in self.queue.split(",") if q.strip()), DEFAULT_QUEUE)

    @field_validator("shared_root")
    @classmethod
    def _absolute_root(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if not value.is_absolute():
            raise ValueError(f"DOCSORT_SHARED_ROOT={str(value)!r} must be an absolute path")
        return value


def load_ingest_settings(**overrides: object) -> IngestSettings:
    """Read the ingest settings; raise :class:`SettingsInvalid` naming the variable if one is wrong."""
    try:
        return IngestSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsInvalid(describe_validation_error(exc)) from exc


def ingest_settings_from(base: DocsortSettings) -> IngestSettings:
    """Ingest settings that keep every value of ``base`` and read the ingest fields from the environment."""
    if isinstance(base, IngestSettings):
        return base
    return load_ingest_settings(**base.model_dump())


@lru_cache(maxsize=1)
def get_ingest_settings() -> IngestSettings:
    return load_ingest_settings()
