"""Job counts and callbacks, document references, duplicates and missing files (real database, no broker)."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select

from schema.enums import DecisionKind, DocumentState, JobState
from schema.manifest import sha256_file
from schema.messages import ClassifyJob, DocumentRef
from schema.tables import Document, Page, Receipt, RoutingDecision, SubmissionJob
from tests.support.jobs import run_admitted
from tests.support.worker import Sent, files_under, write_page
from worker.context import WorkerContext
from worker.jobs import refresh_job
from worker.runner import run_job


def _make_job(ctx: WorkerContext, n_documents: int, callback: str | None = "http://127.0.0.1:9/cb") -> str:
    job_id = str(uuid.uuid4())
    with ctx.sessions.begin() as s:
        s.add(
            SubmissionJob(
                id=job_id, source="celery", submitted_by="t", n_documents=n_documents, callback_url=callback
            )
        )
    return job_id


def _job_row(ctx: WorkerContext, job_id: str) -> SubmissionJob:
    with ctx.sessions() as s:
        job = s.get(SubmissionJob, job_id)
        assert job is not None
        return job


def test_job_counts_pages_and_sends_callback_once_when_done(
    ctx: WorkerContext, sent: Sent, tmp_path: Path
) -> None:
    job_id = _make_job(ctx, 3)
    paths = [write_page(tmp_path / f"{i}.png", g) for i, g in enumerate((0, 128))] + [tmp_path / "empty.png"]
    (tmp_path / "empty.png").write_bytes(b"")
    job = ClassifyJob(job_id=job_id, documents=[DocumentRef(path=str(p)) for p in paths])
    run_admitted(ctx, job)
    row = _job_row(ctx, job_id)
    assert (row.state, row.n_pages, row.n_auto, row.n_review, row.n_failed) == (JobState.done, 2, 1, 1, 1)
    assert row.finished_at is not None and row.callback_state == "pending"
    assert sent.callbacks == [job_id]
    run_admitted(ctx, job)  # redelivered: nothing new, and no second callback
    assert sent.callbacks == [job_id]


def test_job_waits_for_all_its_documents(ctx: WorkerContext, sent: Sent, tmp_path: Path) -> None:
    job_id = _make_job(ctx, 2)
    first = ClassifyJob(job_id=job_id, documents=[DocumentRef(path=str(write_page(tmp_path / "a.png", 0)))])
    run_admitted(ctx, first)
    assert _job_row(ctx, job_id).state == JobState.running and sent.callbacks == []
    second = ClassifyJob(
        job_id=job_id, documents=[DocumentRef(path=str(write_page(tmp_path / "b.png", 255)))]
    )
    run_admitted(ctx, second)
    row = _job_row(ctx, job_id)
    assert row.state == JobState.done and row.n_auto == 2 and sent.callbacks == [job_id]
    with ctx.sessions() as s:
        assert refresh_job(s, job_id) is True


def test_document_id_reference_classifies_the_existing_row(ctx: WorkerContext, tmp_path: Path) -> None:
    (ctx.settings.dir("processing") / "watch").mkdir()
    path = write_page(ctx.settings.dir("processing") / "watch" / "door.png", 255)
    with ctx.sessions.begin() as s:
        doc = Document(sha256=sha256_file(path), source="watch", filename="door.png", stored_path=str(path))
        s.add(doc)
        s.flush()
        doc_id = doc.id
    run_job(ctx, ClassifyJob(documents=[DocumentRef(path=str(path), document_id=doc_id)], on_done="archive"))
    with ctx.sessions() as s:
        (only,) = s.scalars(select(Document)).all()
        assert only.id == doc_id and only.state == DocumentState.done and only.source == "watch"
        assert only.stored_path and Path(only.stored_path).parent == ctx.settings.archive_dir


def test_same_content_later_is_a_duplicate_not_classified_again(ctx: WorkerContext, tmp_path: Path) -> None:
    first = write_page(tmp_path / "a.png", 0)
    copy = tmp_path / "copy-of-a.png"
    copy.write_bytes(first.read_bytes())
    run_admitted(ctx, ClassifyJob(documents=[DocumentRef(path=str(first))], on_done="keep"))
    outcome = run_admitted(ctx, ClassifyJob(documents=[DocumentRef(path=str(copy))], on_done="delete"))
    assert outcome.already_done == 1 and outcome.pages == 0
    assert copy.exists() and first.exists()  # the files named are never moved or deleted
    with ctx.sessions() as s:
        receipts = s.scalars(select(Receipt).order_by(Receipt.id)).all()
        assert [r.duplicate for r in receipts] == [False, True]
        assert len(s.scalars(select(Page)).all()) == 1
        (doc,) = s.scalars(select(Document)).all()
        assert doc.stored_path and Path(doc.stored_path).parent == ctx.settings.archive_dir
    assert not any(p.is_file() for p in (ctx.settings.processing_dir / "celery").rglob("*"))


def test_missing_file_is_recorded_failed_with_reason(ctx: WorkerContext, tmp_path: Path) -> None:
    missing = tmp_path / "gone.png"
    run_admitted(ctx, ClassifyJob(documents=[DocumentRef(path=str(missing))]))
    with ctx.sessions() as s:
        (doc,) = s.scalars(select(Document)).all()
        (decision,) = s.scalars(select(RoutingDecision)).all()
    assert doc.state == DocumentState.failed and doc.error == "file not found"
    assert decision.kind == DecisionKind.failed and decision.reason == "file not found"
    error_dir = ctx.settings.error_dir
    assert error_dir is not None
    assert "gone.png: file not found" in (error_dir / f"gone-{doc.sha256[:10]}.png.reason.txt").read_text()


def test_failed_file_moves_to_error_area_even_when_kept(ctx: WorkerContext, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    run_admitted(ctx, ClassifyJob(documents=[DocumentRef(path=str(bad))], on_done="keep"))
    assert bad.exists()  # the file named stays; docsort's copy goes to the error area
    moved = files_under(ctx.settings.error_dir)
    assert [p.suffix for p in moved] == [".png", ".txt"]
    with ctx.sessions() as s:
        (doc,) = s.scalars(select(Document)).all()
    assert doc.stored_path == str(moved[0]) and doc.state == DocumentState.failed
