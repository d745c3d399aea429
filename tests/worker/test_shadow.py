"""Shadow: a candidate version scores the job's pages beside the active model, recorded, never routed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from review.decisions import decide
from schema.messages import ClassifyJob, DocumentRef
from schema.settings import DocsortSettings
from schema.tables import Audit, Prediction, RoutingDecision
from tests.support.jobs import run_admitted
from tests.support.quality import make_biased_tiny_model
from tests.support.review_items import make_operator
from tests.support.worker import (
    Sent,
    activate_model,
    files_under,
    make_context,
    make_worker_settings,
    write_page,
)
from worker.context import WorkerContext
from worker.registry import sync_registry
from worker.shadow import ShadowCache
from worker.shadow_stats import shadow_report, shadow_versions


def _ctx(settings: DocsortSettings, **overrides: object) -> WorkerContext:
    ws = make_worker_settings(settings, concurrency=1, threads=1, **overrides)
    activate_model(ws)
    return make_context(ws, Sent())


@pytest.fixture
def shadow_ctx(settings: DocsortSettings) -> Iterator[WorkerContext]:
    context = _ctx(settings, shadow_model="tiny/2", audit_rate=1.0)
    make_biased_tiny_model(context.settings.models_dir, "2", dark_bias=1.3)  # calls grey 150 dark
    yield context
    context.sessions.kw["bind"].dispose()


def _job(*paths: Path) -> ClassifyJob:
    return ClassifyJob(documents=[DocumentRef(path=str(p)) for p in paths], on_done="keep")


def test_shadow_predictions_are_recorded_and_never_routed(shadow_ctx: WorkerContext, tmp_path: Path) -> None:
    pages = [write_page(tmp_path / f"p{g}.png", g) for g in (0, 255, 150, 128)]
    outcome = run_admitted(shadow_ctx, _job(*pages))
    assert (outcome.pages, outcome.auto, outcome.review) == (4, 3, 1)
    assert len(files_under(shadow_ctx.settings.outbox_dir)) == 3  # routing as without the shadow
    with shadow_ctx.sessions() as s:
        predictions = s.scalars(select(Prediction).order_by(Prediction.id)).all()
        by_version = {v: [p for p in predictions if p.model_version == v] for v in ("1", "2")}
        assert [p.label for p in by_version["1"]] == ["dark", "light", "light", "light"]
        assert [p.label for p in by_version["2"]] == ["dark", "light", "dark", "dark"]
        for shadow, active in zip(by_version["2"], by_version["1"], strict=True):
            assert (
                shadow.page_id == active.page_id and shadow.id > active.id
            )  # recorded after the routing one
            assert not s.scalars(
                select(RoutingDecision).where(RoutingDecision.prediction_id == shadow.id)
            ).all()
        assert len(s.scalars(select(RoutingDecision)).all()) == 4
        assert shadow_versions(s, datetime.now(UTC) - timedelta(hours=1)) == [("tiny", "2")]
        # operators: the grey pages are dark, as the shadow said; one was audited, one reviewed
        ann = make_operator(s, "ann")
        grey = by_version["1"][2].page.document_id
        for audit in s.scalars(select(Audit)):
            audit.answered_at, audit.operator_id = datetime.now(UTC), ann.id
            audit.answer_label = "dark" if audit.document_id == grey else audit.label
            audit.correct = audit.answer_label == audit.label
        s.commit()
        decide(s, shadow_ctx.settings, prediction_id=by_version["1"][3].id, operator_id=ann.id, label="dark",
               note=None, now=datetime.now(UTC))  # fmt: skip
        report = shadow_report(s, "tiny", "2", datetime.now(UTC) - timedelta(hours=1))
    assert len(files_under(shadow_ctx.settings.outbox_dir)) == 4  # the reviewed page's document delivered
    assert report.active == ["tiny/1"]
    assert (report.agreement.k, report.agreement.n) == (2, 4)
    assert (report.shadow_right.k, report.shadow_right.n) == (4, 4)
    assert (report.active_right.k, report.active_right.n) == (2, 4)
    assert report.shadow_review_rate == 0.0 and report.active_review_rate == 0.25


def test_shadow_with_another_input_or_unknown_is_skipped_and_routing_goes_on(
    settings: DocsortSettings, tmp_path: Path
) -> None:
    ctx = _ctx(settings, shadow_model="tiny/wide")
    make_biased_tiny_model(ctx.settings.models_dir, "wide", dark_bias=1.0, size=(48, 48))
    run_admitted(ctx, _job(write_page(tmp_path / "a.png", 0)))
    cache = ShadowCache()
    unknown = ctx.settings.model_copy(update={"shadow_model": "tiny/none"})
    assert cache.get(WorkerContext(settings=unknown, sessions=ctx.sessions, models=ctx.models)) is None
    assert "tiny/none" in cache.failed_at  # not tried again for a minute
    with ctx.sessions() as s:
        sync_registry(s, ctx.settings.models_dir)
        assert {p.model_version for p in s.scalars(select(Prediction))} == {"1"}
    assert len(files_under(ctx.settings.outbox_dir)) == 1
    ctx.sessions.kw["bind"].dispose()
