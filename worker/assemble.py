"""Step 4 of a job, assemble: the pages of one file become output documents by the file's separation
rules (:mod:`schema.split`), and each document is decided, auto or review, from all its pages.

The page marks (blank pages, separator sheets) and the segmentation are :mod:`worker.page_marks` and
:mod:`worker.separate`; this step applies them to a decoded file and its scores, and decides each
document with the version's thresholds (:func:`worker.decide.decide` on the document's probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schema.enums import DecisionKind, PageRole
from schema.split import SplitRules
from worker.decide import Decision, Policy
from worker.decode import DecodedFile
from worker.imaging import PreparedPage
from worker.infer import PageScores
from worker.page_marks import mark_page
from worker.separate import PageEvidence, decide_document, separate


@dataclass(frozen=True)
class PlannedDocument:
    """One output document of a file: its pages (1-based, in order) and the decision on it."""

    pages: tuple[int, ...]
    decision: Decision
    starts_by: str = "start"  # why it starts where it does: start, blank, barcode, class, pages
    note: str | None = None  # more of its reason (a class named by a separator sheet, an unreadable page)

    @property
    def kind(self) -> DecisionKind:
        return self.decision.kind

    @property
    def reason(self) -> str:
        return f"{self.decision.reason}; {self.note}" if self.note else self.decision.reason


@dataclass
class Assembly:
    """A file's documents, and the pages left out of them (separator sheets, blank pages)."""

    documents: list[PlannedDocument]
    dropped: dict[int, PageRole] = field(default_factory=dict)
    empty_reason: str | None = None  # why a readable file yields no document (every page blank)

    def document_of(self, page: int) -> PlannedDocument | None:
        return next((d for d in self.documents if page in d.pages), None)


BLANK_PREVIEW_SIDE = 1000  # blank pages are measured at this longest side (worker.page_marks.WORK_SIDE)
BARCODE_PREVIEW_SIDE = 1600  # separator codes are read at this longest side (about 130 dpi on A4)


def preview_side(rules: SplitRules) -> int | None:
    """The preview a file's pages need for its rules' page marks; None when the rules need none."""
    if rules.barcode:
        return BARCODE_PREVIEW_SIDE
    if rules.blank or rules.drop_blank:
        return BLANK_PREVIEW_SIDE
    return None


def _evidence(page: PreparedPage, scores: PageScores, rules: SplitRules, names: list[str]) -> PageEvidence:
    if page.error is not None:
        return PageEvidence(number=page.number, probs=None, error=page.error)
    marks = None
    if page.preview is not None and preview_side(rules) is not None:
        marks = mark_page(
            page.preview, blank=rules.blank or rules.drop_blank, barcode=rules.barcode, class_names=names
        )
    return PageEvidence(
        number=page.number,
        probs=scores.probs,
        blank=bool(marks and marks.ink and marks.ink.blank),
        separator=marks.separator if marks else None,
    )


def assemble_file(
    decoded: DecodedFile,
    scores: list[PageScores],
    rules: SplitRules,
    class_names: list[str],
    policy: Policy,
    new_document_cost: float | None = None,
) -> Assembly:
    """The file's documents by ``rules``, each decided from all its pages; the pages left out."""
    evidence = [_evidence(p, s, rules, class_names) for p, s in zip(decoded.pages, scores, strict=True)]
    separation = separate(evidence, class_names, rules, new_document_cost)
    documents = [
        PlannedDocument(
            pages=tuple(d.pages),
            decision=decide_document(d, class_names, policy),
            starts_by=d.cut,
        )
        for d in separation.documents
    ]
    separators = {e.number for e in evidence if e.separator is not None}
    dropped = {
        p.number: PageRole.separator if p.number in separators else PageRole.blank for p in separation.dropped
    }
    return Assembly(documents, dropped, separation.failure)
