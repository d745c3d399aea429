"""Finishing what an interrupted door left half done. Run by ``docsort watch`` at start and each rescan.

- A staged file that no document names (the door stopped before recording it): a watched file is taken
  again with its subfolder tag; an upload or a submitted copy goes to the error folder with a reason,
  since its sender was told the request failed.
- A document still ``received`` (recorded, never sent): its classify job is sent.
- A half-written ``.part`` copy, or a Celery door copy that no document names: removed (the original
  was never touched; the Celery message is redelivered).

Only things older than ``recover_after_seconds`` are touched, so a door at work in another process is
never raced.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ingest.intake import DOORS, Intake, NewDocument
from ingest.staging import (
    IntakeError,
    Staged,
    describe_staged,
    iter_staged_files,
    iter_temp_files,
    original_name,
)
from schema.db import session_scope
from schema.enums import DocumentState, Source
from schema.logs import get_logger
from schema.tables import Document, utcnow
from worker.routing import RoutingRules

log = get_logger(__name__)
IN_CHUNK = 500


@dataclass
class RecoveryReport:
    retaken: int = 0
    to_error: int = 0
    temps_removed: int = 0
    resent: int = 0
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.retaken or self.to_error or self.temps_removed or self.resent)


def _age(path: Path, now: float) -> float:
    try:
        st = path.stat()
    except FileNotFoundError:
        return -1.0
    return now - max(st.st_mtime, st.st_ctime)


def _old(paths: Iterable[Path], grace: float) -> list[Path]:
    now = time.time()
    return [p for p in paths if _age(p, now) >= grace]


def _unrecorded(sessions: sessionmaker[Session], paths: list[Path]) -> list[Path]:
    known: set[str] = set()
    with session_scope(sessions) as session:
        for start in range(0, len(paths), IN_CHUNK):
            names = [str(p) for p in paths[start : start + IN_CHUNK]]
            known.update(session.scalars(select(Document.stored_path).where(Document.stored_path.in_(names))))
    return [p for p in paths if str(p) not in known]


def _write_error(intake: Intake, path: Path, reason: str) -> None:
    folder = intake.settings.dir("error")
    dest = folder / path.name
    os.replace(path, dest)
    (folder / f"{path.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")


def remove_unrecorded_copies(area: Path, sessions: sessionmaker[Session], grace: float) -> int:
    """Remove the Celery door's copies in ``area`` that no document names, at least ``grace`` seconds
    old: a door killed between its copy and its record leaves one, and the redelivered message makes
    another; a door killed in the middle of its copy leaves a ``.part`` file, removed too. The files the
    messages named are where they were. Returns how many were removed."""
    orphans = _old(iter_temp_files(area), grace) + _unrecorded(sessions, _old(iter_staged_files(area), grace))
    for path in orphans:
        path.unlink(missing_ok=True)
    if orphans:
        log.info("recovery.copies_removed", area=str(area), files=len(orphans))
    return len(orphans)


def recover_orphans(intake: Intake, report: RecoveryReport) -> None:
    grace = intake.settings.recover_after_seconds
    for door in DOORS:
        area = intake.area(door)
        for temp in _old(iter_temp_files(area), grace):
            temp.unlink(missing_ok=True)
            report.temps_removed += 1
        if door == "celery":  # docsort's own copies; the files named are where they were
            report.temps_removed += remove_unrecorded_copies(area, intake.sessions, grace)
            continue
        orphans = _unrecorded(intake.sessions, _old(iter_staged_files(area), grace))
        if not orphans:
            continue
        if door != "watch":
            for path in orphans:
                _write_error(
                    intake,
                    path,
                    f"{original_name(path)}: its {door} request stopped before the file was recorded; "
                    "the sender was told it failed. Submit it again if it is still wanted.",
                )
                report.to_error += 1
            continue
        staged: list[Staged] = []
        rules = RoutingRules.load(intake.settings.routes_file)
        for path in orphans:
            tag = path.parent.relative_to(area).as_posix()
            tag = "" if tag == "." else tag
            try:
                found = describe_staged(path, original_name(path), tag)
                staged.append(replace(found, split=rules.split_for(tag)))
            except IntakeError as exc:
                report.problems.append(str(exc))
        for start in range(0, len(staged), intake.settings.watch_batch_files):
            batch = staged[start : start + intake.settings.watch_batch_files]
            intake.take(batch, source=Source.watch, submitted_by="watch-recovery")
            report.retaken += len(batch)


def resend_unsent(intake: Intake, report: RecoveryReport) -> None:
    cutoff = utcnow() - timedelta(seconds=intake.settings.recover_after_seconds)
    with session_scope(intake.sessions) as session:
        rows = session.execute(
            select(Document).where(
                Document.state == DocumentState.received,
                Document.received_at <= cutoff,
                Document.source.in_(DOORS),
            )
        ).scalars()
        by_job: dict[str, list[NewDocument]] = defaultdict(list)
        for doc in rows:
            if not doc.stored_path or not doc.job_id:
                continue
            staged = Staged(
                Path(doc.stored_path), doc.sha256, doc.size_bytes or 0, doc.filename, doc.source_ref, None
            )
            by_job[doc.job_id].append(NewDocument(doc.id, staged, doc.source))
    for job_id, docs in by_job.items():
        intake.send_documents(job_id, docs)
        report.resent += len(docs)


def recover(intake: Intake) -> RecoveryReport:
    """Finish what interrupted doors left; returns what was done."""
    report = RecoveryReport()
    recover_orphans(intake, report)
    resend_unsent(intake, report)
    if report:
        log.warning(
            "recovered interrupted intake",
            retaken=report.retaken,
            to_error=report.to_error,
            temps_removed=report.temps_removed,
            resent=report.resent,
        )
    for problem in report.problems:
        log.error("recovery problem", problem=problem)
    return report
