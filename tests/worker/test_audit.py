"""Audited auto-routing: which documents are audited, recorded once, with their pages' images."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from schema.enums import DecisionKind
from schema.messages import ClassifyJob, DocumentRef
from schema.settings import DocsortSettings
from schema.tables import Audit, OutputDocument, Page, RoutingDecision
from tests.support.jobs import run_admitted
from tests.support.worker import Sent, activate_model, make_context, make_worker_settings, write_page
from worker.audit import audit_draw, choose_audits, is_audited
from worker.context import WorkerContext


@pytest.fixture
def audit_ctx(settings: DocsortSettings) -> Iterator[WorkerContext]:
    ws = make_worker_settings(settings, concurrency=1, threads=1, audit_rate=1.0)
    activate_model(ws)
    context = make_context(ws, Sent())
    yield context
    context.sessions.kw["bind"].dispose()


def _job(*paths: Path) -> ClassifyJob:
    return ClassifyJob(documents=[DocumentRef(path=str(p)) for p in paths], on_done="keep")


def test_draw_is_fixed_by_file_version_and_pages() -> None:
    sha = "ab" * 32
    assert audit_draw(sha, "m", "1", [1, 2]) == audit_draw(sha, "m", "1", [1, 2])
    others = {
        audit_draw(sha, "m", "2", [1, 2]),
        audit_draw(sha, "m", "1", [3]),
        audit_draw("cd" * 32, "m", "1", [1, 2]),
    }
    assert audit_draw(sha, "m", "1", [1, 2]) not in others and len(others) == 3
    assert not is_audited(sha, "m", "1", [1], 0.0) and is_audited(sha, "m", "1", [1], 1.0)


def test_share_audited_matches_the_rate_within_binomial_noise() -> None:
    from scipy.stats import binomtest, kstest

    n, rate = 40_000, 0.01
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    chosen = sum(is_audited(s, "docsort", "20261201-000000", [1], rate) for s in shas)
    assert binomtest(chosen, n, rate).pvalue > 0.001, chosen  # 400 expected
    draws = [audit_draw(s, "docsort", "v", [1]) for s in shas[:5000]]
    assert kstest(draws, "uniform").pvalue > 0.001


def test_auto_documents_are_audited_once_with_images_and_review_documents_never(
    audit_ctx: WorkerContext, tmp_path: Path
) -> None:
    dark, light = write_page(tmp_path / "dark.png", 0), write_page(tmp_path / "light.png", 255)
    grey = write_page(tmp_path / "grey.png", 128)
    run_admitted(audit_ctx, _job(dark, light, grey))
    with audit_ctx.sessions() as s:
        audits = s.scalars(select(Audit).order_by(Audit.id)).all()
        outputs = {o.id: o for o in s.scalars(select(OutputDocument))}
        assert sorted(a.label for a in audits) == ["dark", "light"]
        assert all(outputs[a.output_document_id].kind == DecisionKind.auto for a in audits)
        assert all(
            outputs[a.output_document_id].delivered_at is not None for a in audits
        )  # delivered as usual
        assert all(a.answered_at is None and a.model_version == "1" for a in audits)
        pages = {p.document_id: p for p in s.scalars(select(Page))}
        for audit in audits:
            page = pages[audit.document_id]
            assert page.image_path and Image.open(page.image_path).size == (120, 160)
            decision = s.scalars(select(RoutingDecision).where(RoutingDecision.page_id == page.id)).one()
            assert (
                decision.kind == DecisionKind.auto and decision.cam_path and Path(decision.cam_path).is_file()
            )
        document_ids = [a.document_id for a in audits]
    with audit_ctx.sessions() as s:  # chosen again (a retried job): the same rows, no new ones
        again = [a.id for d in document_ids for a in choose_audits(s, d, 1.0)]
        s.commit()
        assert sorted(again) == sorted(a.id for a in audits)
        assert choose_audits(s, document_ids[0], 0.0) == []


def test_no_audit_at_rate_zero(ctx: WorkerContext, tmp_path: Path) -> None:
    run_admitted(ctx, _job(write_page(tmp_path / "dark.png", 0)))
    with ctx.sessions() as s:
        assert s.scalars(select(Audit)).all() == []
        assert s.scalars(select(Page)).one().image_path is None
