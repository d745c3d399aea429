"""The rows ingest writes for every arrival: a document per content (by sha256) and a receipt per file.

Inserted with ``ON CONFLICT DO NOTHING`` and read back, so two doors receiving the same content at the
same moment, or a redelivered message, find the rows instead of adding more. Functions take the
session explicitly and never commit. A batch of arrivals (the files the watcher took together) is
recorded in a few statements whatever its size: one read of the known contents, one insert of the new
documents, one insert of the receipts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from schema.db import insert_ignore_returning
from schema.errors import DocsortError
from schema.tables import Document, Receipt

IN_CHUNK = 500  # values in one IN (...)
INSERT_CHUNK = 200  # rows in one INSERT (SQLite allows 32,766 values in a statement)


class RowsError(DocsortError):
    """A row ingest just wrote cannot be read back."""


def placeholder_sha(path: str) -> str:
    """A stable key for a file that cannot be read at all (missing), so its failure can be recorded."""
    return hashlib.sha256(b"docsort-unreadable\0" + path.encode("utf-8", "surrogateescape")).hexdigest()


def document_by_sha(session: Session, sha256: str) -> Document | None:
    return session.scalar(select(Document).where(Document.sha256 == sha256))


def ensure_document(session: Session, values: dict[str, Any]) -> tuple[Document, bool]:
    """The document with ``values['sha256']``, created from ``values`` if new; (document, created)."""
    document_id, created = ensure_documents(session, [values])[0]
    document = session.get(Document, document_id)
    if document is None:  # pragma: no cover - read back in the same transaction
        raise RowsError(f"document {values['sha256'][:12]} vanished after insert")
    return document, created


def _ids_by_sha(session: Session, shas: Sequence[str]) -> dict[str, int]:
    """The ids of the documents of these contents that exist."""
    found: dict[str, int] = {}
    for start in range(0, len(shas), IN_CHUNK):
        stmt = select(Document.sha256, Document.id).where(Document.sha256.in_(shas[start : start + IN_CHUNK]))
        found.update((sha, doc_id) for sha, doc_id in session.execute(stmt))
    return found


def ensure_documents(session: Session, rows: Sequence[dict[str, Any]]) -> list[tuple[int, bool]]:
    """For each of ``rows`` (values of a document, by ``sha256``), the document id for its content and
    whether this call created it: (id, created), in order. New contents go in with one insert that
    ignores a content another door has just recorded; a content twice in ``rows`` is created once (its
    later rows are not created)."""
    shas = list(dict.fromkeys(row["sha256"] for row in rows))
    by_sha = _ids_by_sha(session, shas)
    now = datetime.now(UTC)
    first = {row["sha256"]: row for row in reversed(rows)}  # the first row of each content
    new_rows = [first[sha] for sha in shas if sha not in by_sha]
    created: set[str] = set()
    for start in range(0, len(new_rows), INSERT_CHUNK):
        values = [{"received_at": now, **row} for row in new_rows[start : start + INSERT_CHUNK]]
        for sha, doc_id in insert_ignore_returning(session, Document, values, ["sha256"], ["sha256", "id"]):
            by_sha[sha] = doc_id
            created.add(sha)
    raced = [sha for sha in shas if sha not in by_sha]  # recorded by another door since the first read
    if raced:
        by_sha.update(_ids_by_sha(session, raced))
    result: list[tuple[int, bool]] = []
    for row in rows:
        sha = row["sha256"]
        if sha not in by_sha:  # pragma: no cover - the insert or a racing one must have made it
            raise RowsError(f"document {sha[:12]} vanished after insert")
        result.append((by_sha[sha], sha in created))
        created.discard(sha)  # a second arrival of the same content in this batch is a duplicate
    return result


def add_receipts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Record new arrivals (values of receipts) with one insert; no check for an earlier receipt."""
    if rows:
        session.execute(insert(Receipt), list(rows))


def add_receipt(
    session: Session, document: Document, *, job_id: str | None, source: str, source_ref: str, duplicate: bool
) -> None:
    """Record one arrival of a file, unless this job already recorded it (a redelivered message)."""
    seen = session.scalar(
        select(Receipt.id).where(
            Receipt.document_id == document.id,
            Receipt.source_ref == source_ref,
            Receipt.job_id.is_(None) if job_id is None else Receipt.job_id == job_id,
        )
    )
    if seen is None:
        session.add(
            Receipt(
                document_id=document.id,
                job_id=job_id,
                source=source,
                source_ref=source_ref,
                duplicate=duplicate,
            )
        )


def receipt_document(session: Session, source_ref: str, job_id: str | None) -> Document | None:
    """The document an earlier arrival from ``source_ref`` (in this job) became, if any."""
    stmt = select(Document).join(Receipt, Receipt.document_id == Document.id)
    stmt = stmt.where(Receipt.source_ref == source_ref)
    if job_id is not None:
        stmt = stmt.where(Receipt.job_id == job_id)
    return session.scalar(stmt.order_by(Receipt.id.desc()).limit(1))
