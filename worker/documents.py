"""Output documents in the database: the model's documents of a file, an operator's decision that
replaces one of them, and the documents still to deliver.

A file's documents in force are those not ``superseded_at``. The model records its documents once
per file (generation 0); each operator decision on a document under review adds a generation of
operator documents over exactly that document's pages and supersedes it. Functions take the session
explicitly and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schema.enums import DecisionKind, DecisionOrigin
from schema.errors import DocsortError
from schema.tables import OutputDocument, utcnow


class DocumentDecisionError(DocsortError):
    """An operator decision on a document cannot be applied (not under review, pages that do not
    match the document's, an unknown class)."""


@dataclass(frozen=True)
class Part:
    """One document of an operator's decision: its pages, in order, and its class (None: rejected)."""

    pages: tuple[int, ...]
    label: str | None


def in_force(session: Session, document_id: int) -> list[OutputDocument]:
    """The file's documents in force, in page order."""
    return in_force_of(session, [document_id]).get(document_id, [])


def in_force_of(session: Session, document_ids: Sequence[int]) -> dict[int, list[OutputDocument]]:
    """The documents in force of each of these files (one query), in page order; files with none absent."""
    rows = session.scalars(
        select(OutputDocument).where(
            OutputDocument.document_id.in_(document_ids), OutputDocument.superseded_at.is_(None)
        )
    )
    found: dict[int, list[OutputDocument]] = {}
    for row in sorted(rows, key=lambda o: (min(o.pages) if o.pages else 0, o.generation, o.seq)):
        found.setdefault(row.document_id, []).append(row)
    return found


def has_model_documents(session: Session, document_id: int) -> bool:
    return document_id in with_model_documents(session, [document_id])


def with_model_documents(session: Session, document_ids: Sequence[int]) -> set[int]:
    """Those of these files that have the model's documents recorded already (one query)."""
    found = session.scalars(
        select(OutputDocument.document_id).where(
            OutputDocument.document_id.in_(document_ids), OutputDocument.origin == DecisionOrigin.model
        )
    )
    return set(found)


def deliverable(output: OutputDocument) -> bool:
    """In force, not delivered yet, and decided: by the model (auto) or by an operator (any class, or
    rejected)."""
    if output.superseded_at is not None or output.delivered_at is not None:
        return False
    return output.kind == DecisionKind.auto or output.origin == DecisionOrigin.operator


def awaits_review(output: OutputDocument) -> bool:
    """A document in force that the model sent to review and no operator has decided yet."""
    return output.kind == DecisionKind.review


def waiting_for_review(session: Session, document_id: int) -> list[OutputDocument]:
    return [o for o in in_force(session, document_id) if awaits_review(o)]


def review_document_of_page(session: Session, document_id: int, page_number: int) -> OutputDocument | None:
    """The document under review that holds a page of a file, if any."""
    for output in waiting_for_review(session, document_id):
        if page_number in output.pages:
            return output
    return None


def check_parts(output: OutputDocument, parts: Sequence[Part], class_names: Sequence[str]) -> None:
    """:class:`DocumentDecisionError` unless ``parts`` split the pages of ``output``, a document under
    review, in order and each once, each with a class of the model (or None: rejected)."""
    if output.kind != DecisionKind.review or output.superseded_at is not None:
        raise DocumentDecisionError(f"document {output.id} is not waiting for review")
    pages = [p for part in parts for p in part.pages]
    if not parts or any(not part.pages for part in parts) or pages != list(output.pages):
        raise DocumentDecisionError(
            f"the parts must split pages {list(output.pages)} of document {output.id} in order, each once "
            f"(got {[list(part.pages) for part in parts]})"
        )
    unknown = sorted({p.label for p in parts if p.label is not None and p.label not in class_names})
    if unknown:
        raise DocumentDecisionError(
            f"{', '.join(unknown)}: not a class of the model ({', '.join(class_names)})"
        )


def decide_document(
    session: Session,
    output: OutputDocument,
    parts: Sequence[Part],
    *,
    operator_id: int | None,
    class_names: Sequence[str],
) -> list[OutputDocument]:
    """Replace a document under review by the operator's documents: ``parts`` split its pages (in
    order, each page once) and give each part a class (or reject it). Returns the new documents, not
    delivered yet. Flushes, does not commit."""
    check_parts(output, parts, class_names)
    generation = 1 + int(
        session.scalar(
            select(func.max(OutputDocument.generation)).where(
                OutputDocument.document_id == output.document_id
            )
        )
        or 0
    )
    now = utcnow()
    made = []
    for seq, part in enumerate(parts, start=1):
        row = OutputDocument(
            document_id=output.document_id,
            origin=DecisionOrigin.operator,
            generation=generation,
            seq=seq,
            pages=list(part.pages),
            kind=DecisionKind.auto if part.label is not None else DecisionKind.failed,
            label=part.label,
            reason="decided by an operator" if part.label is not None else "rejected by an operator",
            starts_by="operator",
            model_name=output.model_name,
            model_version=output.model_version,
            operator_id=operator_id,
            decided_at=now,
        )
        session.add(row)
        made.append(row)
    output.superseded_at = now
    session.flush()
    return made


def parts_from_pages(pages: Sequence[int], labels: Sequence[str | None]) -> list[Part]:
    """An operator's page-by-page decisions as documents: runs of consecutive pages with one answer."""
    parts: list[Part] = []
    for page, label in zip(pages, labels, strict=True):
        if parts and parts[-1].label == label:
            parts[-1] = Part((*parts[-1].pages, page), label)
        else:
            parts.append(Part((page,), label))
    return parts
