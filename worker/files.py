"""What happens to a document's file once its outcome is committed: archive, delete, keep, or error area.

Names are stable (``<stem>-<sha10><suffix>``), so a redelivered task that finds the file already moved
knows where it went. Nothing here runs before the document's outcome is committed.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from schema.db import session_scope
from schema.enums import DocumentState
from schema.files import copy_atomic
from schema.logs import get_logger
from schema.tables import Document, OutputDocument
from worker.context import JobFile
from worker.documents import awaits_review, deliverable, in_force_of
from worker.routing import safe_component

log = get_logger(__name__)

OnDone = Literal["archive", "delete", "keep"]


class FileMoveError(OSError):
    """A document's file could not be moved (a transient file system fault: the task retries)."""


def stable_name(filename: str, sha256: str) -> str:
    path = Path(filename or "document")
    stem = safe_component(path.stem or "document", 80)
    suffix = safe_component(path.suffix.lstrip("."), 10) if path.suffix else ""
    return f"{stem}-{sha256[:10]}" + (f".{suffix}" if suffix else "")


def _same_file(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    return False


def move_into(source: Path, folder: Path, name: str) -> Path:
    """Move ``source`` to ``folder/name`` (idempotent: an existing target of equal size is kept)."""
    target = folder / name
    if _same_file(source, target):
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.stat().st_size == source.stat().st_size:
            source.unlink()
            return target
        try:
            os.replace(source, target)  # one rename on the same file system: nothing is copied
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            copy_atomic(source, target)  # another file system: copied whole, then the source removed
            source.unlink()
    except OSError as exc:
        raise FileMoveError(f"cannot move {source} to {target}: {exc.strerror or exc}") from exc
    return target


def apply_on_done(
    path: Path | None, on_done: OnDone, archive_dir: Path, filename: str, sha256: str
) -> Path | None:
    """Archive, delete or keep a finished document's file; returns where the file is now (None: gone)."""
    if on_done == "keep":
        return path
    archived = archive_dir / stable_name(filename, sha256)
    if path is None or not path.exists():
        # Moved or deleted by an earlier delivery of this task.
        return archived if on_done == "archive" and archived.exists() else None
    if on_done == "delete":
        try:
            path.unlink()
        except OSError as exc:
            raise FileMoveError(f"cannot delete {path}: {exc.strerror or exc}") from exc
        log.info("file.deleted", path=str(path))
        return None
    moved = move_into(path, archive_dir, archived.name)
    log.info("file.archived", source=str(path), target=str(moved))
    return moved


def move_to_error(path: Path | None, error_dir: Path, filename: str, sha256: str, reason: str) -> Path | None:
    """Move a failed document's file into the error area with ``<name>.reason.txt`` beside it."""
    name = stable_name(filename, sha256)
    target = error_dir / name
    error_dir.mkdir(parents=True, exist_ok=True)
    note = error_dir / f"{name}.reason.txt"
    try:
        note.write_text(f"{filename}: {reason}\n", encoding="utf-8")
    except OSError as exc:
        raise FileMoveError(f"cannot write {note}: {exc.strerror or exc}") from exc
    if path is None or not path.exists():
        return target if target.exists() else None
    moved = move_into(path, error_dir, name)
    log.info("file.error_area", source=str(path), target=str(moved), reason=reason)
    return moved


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def finish_files(
    sessions: sessionmaker[Session],
    files: list[JobFile],
    on_done: OnDone,
    archive_dir: Path,
    error_dir: Path,
    processing_dir: Path | None = None,
) -> int:
    """Step 8, after the outcomes are committed, in one transaction for the job's files: archive, delete or
    keep each file; a failed one goes to the error area. A file with a document not delivered yet stays
    where it is for the next attempt; a file with a document waiting for review is archived, even when
    the job asked to delete it, so the operator's documents can be written from it. Returns how many of
    the files' documents failed. A fault after some files moved leaves them where a redelivered task finds
    them (the names are stable). Only files inside ``processing_dir`` (those docsort staged) are moved
    or deleted."""
    ids = {f.document_id for f in files}
    if not ids:
        return 0
    with session_scope(sessions) as session:
        documents = {d.id: d for d in session.scalars(select(Document).where(Document.id.in_(ids)))}
        outputs = in_force_of(session, sorted(ids))
        for job_file in files:
            document = documents.get(job_file.document_id)
            if document is not None:
                forced = outputs.get(document.id, [])
                _finish_file(document, forced, job_file, on_done, archive_dir, error_dir, processing_dir)
        return sum(1 for d in documents.values() if d.state == DocumentState.failed)


def _finish_file(
    document: Document,
    forced: list[OutputDocument],
    job_file: JobFile,
    on_done: OnDone,
    archive_dir: Path,
    error_dir: Path,
    processing_dir: Path | None,
) -> None:
    if document.state not in (DocumentState.done, DocumentState.failed):
        return
    if document.state == DocumentState.done and any(deliverable(o) for o in forced):
        log.warning("file.kept_undelivered", document_id=document.id, path=str(job_file.path))
        return
    if (
        job_file.path is not None
        and processing_dir is not None
        and not _inside(job_file.path, processing_dir)
    ):
        return  # docsort moves or deletes only the files it staged in its processing area
    stored = Path(document.stored_path) if document.stored_path else None
    owns_record = stored is None or job_file.path is None or stored == job_file.path
    if document.state == DocumentState.failed:
        where = move_to_error(
            job_file.path, error_dir, document.filename, document.sha256, document.error or "failed"
        )
    else:
        keep_for_review = on_done == "delete" and any(awaits_review(o) for o in forced)
        action: OnDone = "archive" if keep_for_review else on_done
        where = apply_on_done(job_file.path, action, archive_dir, document.filename, document.sha256)
    if owns_record and where != stored:
        document.stored_path = str(where) if where else None
