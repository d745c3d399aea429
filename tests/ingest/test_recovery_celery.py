"""Recovery of the Celery door's area: a copy no document names (the door died before recording it) is
removed once older than DOCSORT_RECOVER_AFTER_SECONDS; a recorded copy is left alone."""

from __future__ import annotations

from ingest.intake import Intake
from ingest.recovery import recover, remove_unrecorded_copies
from schema.db import session_scope
from schema.tables import Document
from tests.support.ingest import png_bytes, wait_until


def test_unrecorded_celery_copies_are_removed_and_recorded_ones_kept(intake: Intake) -> None:
    area = intake.area("celery")
    orphan = area / "0123456789ab-orphan.png"
    kept = area / "ba9876543210-kept.png"
    for path, seed in ((orphan, 1), (kept, 2)):
        path.write_bytes(png_bytes(seed))
    with session_scope(intake.sessions) as s:
        s.add(Document(sha256="c" * 64, source="celery", filename="kept.png", stored_path=str(kept)))
    reports = []
    wait_until(lambda: reports.append(recover(intake)) or not orphan.exists(), 30, what="the orphan removed")
    assert kept.exists() and (inbox_errors := list(intake.settings.dir("error").iterdir())) == [], (
        inbox_errors
    )
    assert sum(r.temps_removed for r in reports) == 1 and sum(r.retaken for r in reports) == 0


def test_a_celery_copy_cut_short_by_a_kill_is_removed_when_a_worker_starts(intake: Intake) -> None:
    area = intake.area("celery")
    half = area / ".0123456789ab-scan.png.1a2b3c4d.part"  # as the door's copy names it while it writes
    half.write_bytes(png_bytes(3)[:100])
    assert remove_unrecorded_copies(area, intake.sessions, 0.0) == 1
    assert not half.exists()
