"""Shadow: a candidate version runs beside the active model on the same pages, without routing.

``DOCSORT_SHADOW_MODEL=name/version`` names it. The runner's hook, :func:`record_shadow`, is called
once per job after its files are recorded: the candidate scores the same decoded pages (one batch, the
same model inputs) and its predictions are recorded in ``predictions`` under its own name and version,
with no routing decision. A page's routing prediction is the one with the model's routing decision,
never simply its latest. Nothing the candidate says reaches a destination; :mod:`worker.shadow_stats`
measures how it agrees with the active model and with operators' answers.

The candidate must take the same input as the active model (size, channels, resize policy): the
pages are decoded once, for the active model. A candidate that cannot be found, loaded, or fed the
same input is skipped with one log line a minute; routing never waits on it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from schema.db import insert_ignore_many, session_scope
from schema.logs import get_logger
from schema.tables import Page, Prediction, utcnow
from worker import metrics
from worker.context import JobFile, WorkerContext
from worker.decide import Policy, decide
from worker.decode import DecodedFile
from worker.infer import PageScores, infer
from worker.inference import LoadedModel, load_model
from worker.registry import sync_registry, version_row

log = get_logger(__name__)
RETRY_SECONDS = 60.0


@dataclass
class ShadowCache:
    """The shadow version this process has loaded (at most one), and when loading it last failed."""

    loaded: dict[str, LoadedModel] = field(default_factory=dict)
    failed_at: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, ctx: WorkerContext) -> LoadedModel | None:
        wanted = ctx.settings.shadow_model
        if not wanted:
            return None
        with self.lock:
            if wanted in self.loaded:
                return self.loaded[wanted]
            if time.monotonic() - self.failed_at.get(wanted, -RETRY_SECONDS) < RETRY_SECONDS:
                return None
            try:
                model = self._load(ctx, wanted)
            except Exception as exc:  # any failure leaves routing alone: the shadow is skipped
                self.failed_at[wanted] = time.monotonic()
                log.error("shadow.unavailable", shadow=wanted, reason=str(exc))
                return None
            self.loaded.clear()
            self.loaded[wanted] = model
            log.info("shadow.loaded", shadow=wanted, path=str(model.version_dir))
            return model

    @staticmethod
    def _load(ctx: WorkerContext, wanted: str) -> LoadedModel:
        name, _, version = wanted.partition("/")
        with session_scope(ctx.sessions) as session:
            row = version_row(session, name, version)
            if row is None:
                sync_registry(session, ctx.settings.models_dir)
                row = version_row(session, name, version)
            if row is None:
                raise LookupError(f"no model version {wanted} in {ctx.settings.models_dir}")
            path = Path(row.path)
        s = ctx.settings
        return load_model(path, s.provider, s.intra_op_threads(), s.batch_size)


SHADOWS = ShadowCache()


def same_input(shadow: LoadedModel, active: LoadedModel) -> bool:
    return shadow.manifest.input == active.manifest.input


def _prediction_rows(
    pages: dict[int, int], decoded: DecodedFile, scores: list[PageScores], shadow: LoadedModel, worker: str
) -> list[dict[str, object]]:
    """One prediction row per recorded, readable page of the file ({page number: page id})."""
    policy = Policy.from_thresholds(shadow.manifest.thresholds)
    names = shadow.manifest.class_names
    rows: list[dict[str, object]] = []
    now = utcnow()
    for page, page_scores in zip(decoded.pages, scores, strict=True):
        if page.error is not None or page.number not in pages:
            continue
        decision = decide(page_scores.probs, names, policy)
        rows.append(
            {
                "page_id": pages[page.number],
                "model_name": shadow.name,
                "model_version": shadow.version,
                "label": decision.label,
                "confidence": decision.confidence,
                "margin": decision.margin,
                "scores": decision.scores,
                "latency_ms": page_scores.latency_ms,
                "worker": worker[:200],
                "created_at": now,
            }
        )
    return rows


def record_shadow(
    ctx: WorkerContext,
    active: LoadedModel,
    decoded: list[tuple[JobFile, DecodedFile]],
    cache: ShadowCache = SHADOWS,
) -> int:
    """The runner's hook once the job's files are recorded: score their decoded pages with the shadow
    version and record its predictions (no routing). Returns the predictions recorded."""
    shadow = cache.get(ctx)
    if shadow is None or not decoded or (shadow.name, shadow.version) == (active.name, active.version):
        return 0
    if not same_input(shadow, active):
        if time.monotonic() - cache.failed_at.get("input", -RETRY_SECONDS) >= RETRY_SECONDS:
            cache.failed_at["input"] = time.monotonic()
            log.error("shadow.input_differs", shadow=f"{shadow.name}/{shadow.version}", active=active.version)
        return 0
    scores = infer(shadow, [d for _, d in decoded])
    recorded = 0
    with session_scope(ctx.sessions) as session:
        for (job_file, decoded_file), file_scores in zip(decoded, scores, strict=True):
            pages = dict(
                session.execute(
                    select(Page.page_number, Page.id).where(Page.document_id == job_file.document_id)
                ).all()
            )
            rows = _prediction_rows(pages, decoded_file, file_scores, shadow, ctx.worker_name)
            recorded += insert_ignore_many(
                session, Prediction, rows, ["page_id", "model_name", "model_version"]
            )
    metrics.shadow_pages(shadow.name, shadow.version, recorded)
    return recorded
