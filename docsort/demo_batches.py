"""The demo's documents: a scanner stack of several documents in one PDF, separated by class, and a
multi-page document; what each should become, and the table of the documents that came out.

The stack goes into the inbox's ``batches/`` subfolder, whose rule in the demo's routes file is
``class``; the multi-page document goes into the inbox itself (rule ``none``: one file, one document).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from docsort.synth import make_page
from ingest.results import DocumentResult, job_result
from schema.files import write_text_atomic
from schema.tables import SubmissionJob

BATCH_FOLDER = "batches"
ROUTES = f"sources:\n  {BATCH_FOLDER}:\n    split: class\n"
STACK = (("text", 2), ("form", 1), ("photo", 2), ("drawing", 1), ("text", 1))
MULTI_PAGE = ("text", 3)


@dataclass(frozen=True)
class Expected:
    """A document the demo dropped: the file, its pages, its class."""

    file: str
    pages: tuple[int, ...]
    label: str


def write_routes(path: Path) -> Path:
    return write_text_atomic(path, ROUTES)


def _pdf(path: Path, kinds: list[str], seed: int, size: tuple[int, int]) -> None:
    pages = [make_page(seed, kind, 900 + i, size).image.convert("RGB") for i, kind in enumerate(kinds)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=150)


def drop_documents(inbox: Path, seed: int, size: tuple[int, int], classes: tuple[str, ...]) -> list[Expected]:
    """Write the stack and the multi-page document into ``inbox``; the documents they hold."""
    plan = [(kind, n) for kind, n in STACK if kind in classes] or [(classes[0], 2)]
    kinds = [kind for kind, n in plan for _ in range(n)]
    expected: list[Expected] = []
    first = 1
    for kind, n in plan:
        if expected and expected[-1].label == kind:  # the same class twice in a row is one document
            last = expected.pop()
            expected.append(Expected(last.file, (*last.pages, *range(first, first + n)), kind))
        else:
            expected.append(Expected("stack-001.pdf", tuple(range(first, first + n)), kind))
        first += n
    _pdf(inbox / BATCH_FOLDER / "stack-001.pdf", kinds, seed, size)
    kind = MULTI_PAGE[0] if MULTI_PAGE[0] in classes else classes[0]
    _pdf(inbox / "contract-001.pdf", [kind] * MULTI_PAGE[1], seed + 1, size)
    expected.append(Expected("contract-001.pdf", tuple(range(1, MULTI_PAGE[1] + 1)), kind))
    return expected


def all_documents(session: Session) -> list[DocumentResult]:
    found: list[DocumentResult] = []
    for job_id in session.scalars(select(SubmissionJob.id).order_by(SubmissionJob.created_at)):
        result = job_result(session, job_id)
        if result is not None:
            found.extend(result.documents)
    return found


def document_table(documents: list[DocumentResult], expected: list[Expected]) -> Table:
    """Documents by outcome and class, and how many of the dropped documents came out exactly."""
    table = Table(title="documents (a file is one document unless its folder's rule separates it)")
    for column in ("predicted class", "auto", "review", "failed"):
        table.add_column(column, justify="left" if column == "predicted class" else "right")
    counts: dict[str, Counter[str]] = {}
    for d in documents:
        counts.setdefault(d.label or "(none)", Counter())[d.outcome] += 1
    for label, c in sorted(counts.items()):
        table.add_row(label, str(c["auto"]), str(c["review"]), str(c["failed"]))
    total = Counter(d.outcome for d in documents)
    table.add_section()
    table.add_row("total", str(total["auto"]), str(total["review"]), str(total["failed"]))
    got = {(Path(d.source).name, tuple(d.pages), d.label) for d in documents}
    exact = sum(1 for e in expected if (e.file, e.pages, e.label) in got)
    table.caption = (
        f"documents of the stack and the multi-page file recovered exactly: {exact}/{len(expected)}"
    )
    return table
