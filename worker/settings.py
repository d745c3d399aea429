"""Settings of the worker deployable: the shared ones plus model, threads, batching, routing, metrics.

Every field reads from the environment with the ``DOCSORT_`` prefix (``DOCSORT_PROVIDER=cuda``,
``DOCSORT_CONCURRENCY=4`` ...). ``docsort worker`` options override them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from schema.errors import SettingsInvalid
from schema.messages import DEFAULT_QUEUE
from schema.settings import DocsortSettings, describe_validation_error
from schema.split import SplitRules
from worker import limits

Provider = Literal["cpu", "cuda", "auto"]


class WorkerSettings(DocsortSettings):
    """Settings of a worker process (and of ``docsort classify``)."""

    provider: Provider = Field(
        "cpu", description="ONNX Runtime device: `cpu`, `cuda` (falls back to CPU if absent) or `auto`."
    )
    concurrency: int = Field(
        0, ge=0, le=64, description="Worker processes (one ONNX session each); 0: one per core."
    )
    threads: int = Field(
        0, ge=0, le=256, description="Intra-op threads per process; 0: cores divided by processes."
    )
    decode_threads: int = Field(
        1, ge=1, le=64, description="Files of a job one process decodes at once (threads; see README)."
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
    split: str = Field(
        "none",
        description="Separation rules of a file whose door gave none: none, blank, barcode, class, pages:N, "
        "drop-blank (comma-separated).",
    )
    audit_rate: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of automatically routed documents also put to an operator as audit items "
        "(delivered as usual), to measure live accuracy; e.g. 0.01. 0: none.",
    )
    shadow_model: str | None = Field(
        None,
        description="A candidate version, `name/version`, run beside the active model on the same pages "
        "without routing; its predictions are recorded for comparison.",
    )
    quality_refresh_seconds: float = Field(
        300.0, ge=0.0, description="How long the quality metrics (live accuracy, drift) are reused."
    )
    drift_window_hours: int = Field(
        24, ge=1, le=24 * 90, description="Live pages compared with validation in the drift metrics."
    )
    review_max_side: int = Field(1600, ge=64, le=10000, description="Longest side of saved review images.")
    review_keep_mb: int = Field(
        64,
        ge=0,
        le=4096,
        description="MB of pixels one job's decode keeps for the review images of pages decoded whole "
        "(pages past it are decoded again if sent to review); 0: none kept.",
    )
    max_page_pixels: int = Field(
        limits.MAX_PAGE_PIXELS,
        ge=1,
        description="Most pixels of one page as its header declares them; larger pages are refused "
        "before decoding (Pillow itself refuses above about 179 Mpx).",
    )
    max_page_mb: int = Field(
        limits.MAX_PAGE_MB,
        ge=1,
        description="Most MB one page may take decoded: pixels x bytes a pixel of its mode (1 bilevel, grey "
        "or palette, 2 for 16-bit grey, 4 for RGB, RGBA, CMYK, 32-bit and float), after JPEG scaling.",
    )
    max_pages: int = Field(limits.MAX_PAGES, ge=1, description="Most pages in one file.")
    pdf_render_memory_mb: int = Field(
        limits.PDF_RENDER_MEMORY_MB,
        ge=64,
        description="Address-space limit of the process that renders PDF pages; a page that needs more "
        "fails its file.",
    )
    pdf_page_timeout_s: float = Field(
        limits.PDF_PAGE_TIMEOUT_S, gt=0.0, description="Most seconds to render one PDF page."
    )
    pdf_renderer_keep_mb: int = Field(
        limits.PDF_RENDERER_KEEP_MB,
        ge=32,
        description="The PDF render process is replaced after a file once it holds more than this.",
    )
    pdf_max_side: int = Field(
        limits.PDF_MAX_SIDE, ge=64, le=20000, description="Longest side of a rendered PDF page, pixels."
    )
    pdf_isolated: bool = Field(
        True,
        description="Render PDF pages in a separate process under the memory and time limits; false "
        "renders them in the worker's process, unbounded.",
    )

    @field_validator("shadow_model")
    @classmethod
    def _name_and_version(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        name, _, version = value.partition("/")
        if not name or not version or "/" in version:
            raise ValueError(
                f"DOCSORT_SHADOW_MODEL={value!r}: expected name/version, e.g. docsort/20261201-101500"
            )
        return value

    @field_validator("split")
    @classmethod
    def _known_split(cls, value: str) -> str:
        try:
            return str(SplitRules.parse(value))
        except ValueError as exc:
            raise ValueError(f"DOCSORT_SPLIT={value!r}: {exc}") from exc

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

    def decode_limits(self) -> limits.DecodeLimits:
        """The budget each file is decoded within (:func:`worker.imaging.prepare_pages`)."""
        return limits.DecodeLimits(
            max_page_pixels=self.max_page_pixels,
            max_page_mb=self.max_page_mb,
            max_pages=self.max_pages,
            pdf_render_memory_mb=self.pdf_render_memory_mb,
            pdf_page_timeout_s=self.pdf_page_timeout_s,
            pdf_renderer_keep_mb=self.pdf_renderer_keep_mb,
            pdf_max_side=self.pdf_max_side,
            pdf_isolated=self.pdf_isolated,
        )

    def processes(self) -> int:
        """Worker processes: ``concurrency``, or one per core (each with one ONNX Runtime thread: a page's
        decode, about four fifths of its CPU time on A4 scans, runs in one thread, so a process per core
        keeps every core busy where one process of many threads leaves them idle while it decodes)."""
        return self.concurrency or max(1, os.cpu_count() or 1)

    def intra_op_threads(self) -> int:
        """Threads per ONNX session so that processes x threads = cores."""
        if self.threads:
            return self.threads
        return max(1, (os.cpu_count() or 1) // self.processes())


def load_worker_settings(**overrides: object) -> WorkerSettings:
    """Worker settings from the environment; :class:`SettingsInvalid` says what to fix."""
    try:
        return WorkerSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsInvalid(describe_validation_error(exc)) from exc


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    return load_worker_settings()
