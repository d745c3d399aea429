"""Recovery of what an interrupted door left: staged but unrecorded files, recorded but unsent jobs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from ingest.intake import Intake, NotSent
from ingest.recovery import recover
from ingest.sender import CelerySender
from ingest.settings import IngestSettings
from ingest.staging import stage_copy, staged_destination
from schema.db import session_scope
from schema.enums import DocumentState
from schema.tables import Document, Receipt
from tests.support.ingest import png_bytes, queued_document_ids
from tests.support.intake import close_intake, make_intake


@pytest.fixture
def now_intake(any_ingest_settings: IngestSettings) -> Intake:
    """An intake whose recovery touches anything, however young."""
    made = make_intake(any_ingest_settings.model_copy(update={"recover_after_seconds": 0.0}))
    yield made  # type: ignore[misc]
    close_intake(made)


def test_watched_file_moved_but_never_recorded_is_taken_again_with_its_tag(
    now_intake: Intake, rclient: redis.Redis
) -> None:
    staged = staged_destination(now_intake.area("watch"), "scan.png", "mailroom/a")
    staged.write_bytes(png_bytes(1))
    report = recover(now_intake)
    assert report.retaken == 1
    with session_scope(now_intake.sessions) as s:
        doc = s.scalars(select(Document)).one()
        assert (doc.filename, doc.source_ref, doc.source) == ("scan.png", "mailroom/a", "watch")
        assert doc.stored_path == str(staged) and doc.state == DocumentState.processing
    assert queued_document_ids(rclient, now_intake.settings.job_queue) == [doc.id]
    assert not recover(now_intake)  # nothing left to do: a second pass repeats nothing
    assert queued_document_ids(rclient, now_intake.settings.job_queue) == [doc.id]


def test_recorded_but_unsent_job_is_sent_by_recovery_exactly_once(
    now_intake: Intake, tmp_path: Path, rclient: redis.Redis
) -> None:
    broken = Intake(
        now_intake.settings, now_intake.sessions, CelerySender("redis://127.0.0.1:1/0", "nowhere")
    )
    src = tmp_path / "a.png"
    src.write_bytes(png_bytes(2))
    with pytest.raises(NotSent, match="recorded but could not be sent"):
        broken.take([stage_copy(src, broken.area("submit"))], source="submit", submitted_by="t")
    with session_scope(now_intake.sessions) as s:
        doc = s.scalars(select(Document)).one()
        assert doc.state == DocumentState.received
    assert queued_document_ids(rclient, now_intake.settings.job_queue) == []
    assert recover(now_intake).resent == 1
    assert recover(now_intake).resent == 0
    assert queued_document_ids(rclient, now_intake.settings.job_queue) == [doc.id]
    with session_scope(now_intake.sessions) as s:
        assert s.get(Document, doc.id).state == DocumentState.processing  # type: ignore[union-attr]


def test_upload_staged_but_never_recorded_goes_to_the_error_folder_with_a_reason(now_intake: Intake) -> None:
    staged = staged_destination(now_intake.area("api"), "invoice.pdf")
    staged.write_bytes(b"%PDF-1.4 partial job")
    report = recover(now_intake)
    assert report.to_error == 1 and report.retaken == 0
    error_dir = now_intake.settings.dir("error")
    assert (error_dir / staged.name).read_bytes() == b"%PDF-1.4 partial job"
    reason = (error_dir / f"{staged.name}.reason.txt").read_text()
    assert reason.startswith("invoice.pdf: its api request stopped before the file was recorded")
    with session_scope(now_intake.sessions) as s:
        assert s.scalars(select(Receipt)).all() == []


def test_recovery_leaves_young_files_and_recorded_files_alone_and_removes_stale_part_copies(
    any_ingest_settings: IngestSettings, tmp_path: Path, rclient: redis.Redis
) -> None:
    grace = 3.0  # long enough for the refused send below to come back on a loaded machine
    intake = make_intake(any_ingest_settings.model_copy(update={"recover_after_seconds": grace}))
    recorded_src = tmp_path / "r.png"
    recorded_src.write_bytes(png_bytes(3))
    recorded = intake.take([stage_copy(recorded_src, intake.area("watch"))], source="watch", submitted_by="t")
    young = staged_destination(intake.area("watch"), "young.png")
    young.write_bytes(png_bytes(4))
    part = intake.area("submit") / ".x.png.abcd.part"
    part.write_bytes(b"half")
    broken = Intake(intake.settings, intake.sessions, CelerySender("redis://127.0.0.1:1/0", "nowhere"))
    unsent_src = tmp_path / "u.png"
    unsent_src.write_bytes(png_bytes(5))
    with pytest.raises(NotSent):
        broken.take([stage_copy(unsent_src, intake.area("api"))], source="api", submitted_by="t")
    assert not recover(intake)  # all younger than the grace period
    assert young.exists() and part.exists()
    time.sleep(grace + 0.2)
    report = recover(intake)
    assert (report.retaken, report.temps_removed, report.resent, report.to_error) == (1, 1, 1, 0)
    assert not part.exists()
    ids = queued_document_ids(rclient, intake.settings.job_queue)
    assert len(ids) == 3 and len(set(ids)) == 3 and ids[0] == recorded.arrivals[0].document_id
    close_intake(intake)
