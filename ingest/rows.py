"""The rows ingest writes for every arrival: a document per content (by sha256) and a receipt per file.

Inserted with ``ON CONFLICT DO NOTHING`` and read back, so two doors receiving the same content at the
same moment, or a redelivered message, find the rows instead of adding more. Functions take the
session explicitly and never commit.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.db import insert_ignore
from schema.errors import DocsortError
from schema.tables import Document, Receipt


class RowsError(DocsortError):
    """A row ingest just wrote cannot be read back."""


def placeholder_sha(path: str) -> str:
    """A stable key for a file that cannot be read at all (missing), so its failure can be recorded."""
    return hashlib.sha256(b"docsort-unreadable\0" + path.encode("utf-8", "surrogateescape")).hexdigest()


def document_by_sha(session: Session, sha256: str) -> Document | None:
    return session.scalar(select(Document).where(Document.sha256 == sha256))


def ensure_document(session: Session, values: dict[str, Any]) -> tuple[Document, bool]:
    """The document with ``values['sha256']``, created from ``values`` if new; (document, created)."""
    existing = document_by_sha(session, values["sha256"])
    if existing is not None:
        return existing, False
    created = insert_ignore(session, Document, {"received_at": datetime.now(UTC), **values}, ["sha256"])
    session.flush()
    doc = document_by_sha(session, values["sha256"])
    if doc is None:  # pragma: no cover - the insert or a racing one must have made it
        raise RowsError(f"document {values['sha256'][:12]} vanished after insert")
    return doc, created


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
