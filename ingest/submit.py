"""``docsort submit``: files and folders as one job through the broker, and waiting for its outcome."""

from __future__ import annotations

import getpass
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import func, select
from tqdm import tqdm

from ingest.intake import Intake, IntakeResult, NotSent
from ingest.results import JobResult, job_finished, job_result
from ingest.staging import IntakeError, Staged, stage_copy
from ingest.watch import ignored_name
from schema.db import session_scope
from schema.enums import DocumentState, Source
from schema.tables import Document


class WaitTimedOut(IntakeError):
    """A job did not end within the time given to ``--wait``."""


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a folder's files recursively in sorted order (as ``docsort classify`` lists them),
    hidden and temporary names skipped."""
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if child.is_file() and not any(ignored_name(part) for part in rel.parts):
                    files.append(child)
        else:
            raise IntakeError(f"{path}: no such file or folder")
    if not files:
        raise IntakeError(f"no files in {', '.join(str(p) for p in paths)}")
    return files


def submit_paths(
    intake: Intake,
    paths: Sequence[Path],
    callback_url: str | None = None,
    progress: bool = True,
    split: str | None = None,
) -> IntakeResult:
    """Copy the files into the processing area and send them as one job (originals stay untouched)."""
    files = expand_paths(paths)
    area = intake.area("submit")
    staged: list[Staged] = []
    try:
        for path in tqdm(files, desc="submitting", unit="file", file=sys.stderr, disable=not progress):
            staged.append(stage_copy(path, area, str(path), intake.settings.max_file_bytes))
        return intake.take(
            staged, source=Source.submit, submitted_by=_user(), callback_url=callback_url, split=split
        )
    except NotSent:
        raise  # recorded: the copies stay for recovery to send
    except BaseException:
        _remove(staged)
        raise


def _remove(staged: Sequence[Staged]) -> None:
    for item in staged:
        item.path.unlink(missing_ok=True)


def _user() -> str:
    try:
        return f"submit:{getpass.getuser()}"
    except (KeyError, OSError):
        return "submit"


def _finished_documents(intake: Intake, job_id: str) -> int:
    with session_scope(intake.sessions) as session:
        return int(
            session.scalar(
                select(func.count(Document.id)).where(
                    Document.job_id == job_id,
                    Document.state.in_([DocumentState.done, DocumentState.failed]),
                )
            )
            or 0
        )


def wait_for_job(
    intake: Intake,
    job_id: str,
    total: int,
    timeout: float,
    progress: bool = True,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> JobResult:
    """Poll the job until it ends; a progress bar counts its finished documents."""
    deadline = time.monotonic() + timeout
    with tqdm(total=total, desc="classifying", unit="doc", file=sys.stderr, disable=not progress) as bar:
        while True:
            with session_scope(intake.sessions) as session:
                result = job_result(session, job_id)
            if result is None:
                raise IntakeError(f"no job {job_id}")
            done = _finished_documents(intake, job_id)
            bar.update(done - bar.n)
            if job_finished(result.state):
                return result
            if time.monotonic() > deadline:
                raise WaitTimedOut(f"job {job_id} is still {result.state} after {timeout:g} s")
            sleep(interval)
