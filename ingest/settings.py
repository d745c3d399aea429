"""Settings of the ingest doors (watch folders, the jobs API, ``docsort submit``) and the job callback.

They extend :class:`schema.settings.DocsortSettings` and are read from the same environment (prefix
``DOCSORT_``) and ``.env`` file.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import NoDecode

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
        "door are recovered by the watcher once they are this old (the Celery door's copies that no "
        "document names: by each worker when it starts).",
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
    callback_allowed_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list,
        description="Networks (comma-separated CIDR) callbacks may reach besides public addresses; "
        "default: public addresses only.",
    )
    celery_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders (comma-separated) under which the Celery door reads the files a message "
        "names; unset: every path is refused.",
    )
    max_file_bytes: int = Field(
        1024 * 1024 * 1024, ge=1, description="Largest file any door takes (bytes); larger ones are refused."
    )
    max_documents_per_message: int = Field(
        100, ge=1, description="Most files one Celery door message may name; a longer message is refused."
    )
    api_max_json_bytes: int = Field(
        1024 * 1024, ge=1, description="Largest JSON body of `POST /v1/jobs` (413 above)."
    )

    @property
    def job_queue(self) -> str:
        """The queue classify jobs and callbacks are sent to."""
        return next((q.strip() for q in self.queue.split(",") if q.strip()), DEFAULT_QUEUE)

    @field_validator("celery_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("celery_roots")
    @classmethod
    def _absolute_roots(cls, value: list[Path]) -> list[Path]:
        for root in value:
            if not root.is_absolute():
                raise ValueError(f"DOCSORT_CELERY_ROOTS: {str(root)!r} must be an absolute path")
        return value

    @field_validator("callback_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [n.strip() for n in value.split(",") if n.strip()]
        return value

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
