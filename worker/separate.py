"""Assemble: the pages of one source file become output documents, by the file's separation rules.

Pure logic, no database and no files: the caller hands over, per page, its number, its calibrated
probability vector (None: the page could not be read), whether it is blank and the separator sheet it
is (:mod:`worker.page_marks`); :func:`separate` returns the documents and the dropped pages, and
:func:`decide_document` applies the version's thresholds (:mod:`worker.decide`) to each document.

Rules (:class:`SplitRules`, one spec string): ``none`` (the default: the file is one document),
``blank`` (a blank page separates and is dropped), ``barcode`` (a separator sheet starts a document
and is dropped; the class it names is that of the documents up to the next sheet), ``class`` (a change
of class starts a document), ``pages:N`` (every N pages kept), ``drop-blank`` (blank pages dropped
without separating). Sheets and blank pages are hard cuts; ``pages:N`` cuts inside the runs they
leave, ``class`` inside those, except where a sheet has named the class.

**Segmentation by class** minimises, over the documents of a run, ``-Σ log p(page, c)`` for each
document's best class ``c`` (probabilities clipped at :data:`PROB_FLOOR`) plus λ per new document. At
the optimum neighbours never share a class, so it is a class path with cost λ per change, found by
the Viterbi recursion (:func:`class_path`); λ = 0 is the greedy rule. The default λ comes from the
chance that a page starts a document (:func:`default_new_document_cost`); with
``2λ >= -log PROB_FLOOR`` one odd page never cuts a run in three. An unreadable page carries no
evidence and stays with its neighbours.

**Document class**: the top class of the mean of its pages' vectors, its confidence that mean, its
margin the top mean less the second; :func:`decide_document` applies the page thresholds to that
vector. A class named by a separator sheet wins; a document with an unreadable page goes to review.
docs/documents.md says more, with the measure that sets λ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from schema.enums import DecisionKind
from schema.errors import DocsortError
from schema.split import SplitRules
from worker.decide import Decision, Policy, decide
from worker.limits import MAX_PAGES
from worker.page_marks import Separator

MAX_DOCUMENTS = MAX_PAGES  # a document holds at least one page
PROB_FLOOR = 1e-3  # probabilities are clipped here: one page costs at most -log(1e-3) = 6.9 nats
MEAN_DOCUMENT_PAGES = 2.5  # the expected pages per document that sets the default λ


class SeparationError(DocsortError):
    """The pages handed to :func:`separate` break its contract (order, vector length, limits)."""


@dataclass(frozen=True)
class PageEvidence:
    """One page of the source file, as the assemble step sees it."""

    number: int  # 1-based, in source order
    probs: np.ndarray | Sequence[float] | None  # calibrated, over the class names; None: unreadable
    blank: bool = False
    separator: Separator | None = None
    error: str | None = None  # why the page could not be read


@dataclass(frozen=True)
class OutputDocument:
    index: int  # 1-based, in source order
    pages: tuple[int, ...]  # source page numbers, separators and dropped blanks left out
    label: str | None  # None: no page could be read and no separator named the class
    confidence: float
    margin: float
    probs: tuple[float, ...] | None  # mean over its readable pages
    cut: str  # why a document starts at its first page
    label_reason: str
    named_by_separator: bool = False
    unreadable: tuple[int, ...] = ()
    review_reason: str | None = None  # set when it must go to review whatever its confidence


@dataclass(frozen=True)
class DroppedPage:
    number: int
    reason: str


@dataclass(frozen=True)
class Separation:
    documents: tuple[OutputDocument, ...]
    dropped: tuple[DroppedPage, ...]
    failure: str | None = None  # why the file yields no document; None when it yields some


@dataclass
class _Run:
    """Kept pages between hard cuts, with why the first of them starts a document."""

    cut: str
    separator: Separator | None
    separator_page: int | None
    pages: list[PageEvidence]


def separate(
    pages: Sequence[PageEvidence],
    class_names: Sequence[str],
    rules: SplitRules,
    new_document_cost: float | None = None,
    max_pages: int = MAX_PAGES,
) -> Separation:
    """The output documents of one source file, and its dropped pages with their reasons.

    ``new_document_cost`` is λ for the class rule (None: :func:`default_new_document_cost`)."""
    probs = _check(pages, class_names, max_pages)
    cost = default_new_document_cost(len(class_names)) if new_document_cost is None else new_document_cost
    runs, dropped = _hard_runs(pages, rules)
    documents: list[OutputDocument] = []
    for run in runs:
        for start, end, cut in _soft_cuts(run, probs, class_names, rules, cost):
            documents.append(_document(len(documents) + 1, run, start, end, cut, probs, class_names))
    return Separation(tuple(documents), tuple(dropped), None if documents else _failure(pages, dropped))


def default_new_document_cost(n_classes: int, mean_pages: float = MEAN_DOCUMENT_PAGES) -> float:
    """λ = ln((1 - q)(K - 1) / q): the cost of a change of class on a path where each page starts a new
    document with chance q = 1 / ``mean_pages``, of one of the K - 1 other classes (ln 4.5 = 1.50 for 4
    classes and 2.5 pages; ln 22.5 = 3.11 for 16 classes)."""
    if mean_pages <= 1.0:
        raise SeparationError(f"mean pages per document must be more than 1 (got {mean_pages})")
    if n_classes < 2:
        return 0.0  # one class: the class never changes
    q = 1.0 / mean_pages
    return float(np.log((1.0 - q) * (n_classes - 1) / q))


def _check(
    pages: Sequence[PageEvidence], class_names: Sequence[str], max_pages: int
) -> dict[int, np.ndarray]:
    """Each readable page's probability vector, clipped at the floor; unreadable pages are absent."""
    if len(pages) > max_pages:
        raise SeparationError(f"{len(pages)} pages: a file may hold at most {max_pages}")
    if not class_names or len(set(class_names)) != len(class_names):
        raise SeparationError(f"class names must be given, each once: {list(class_names)}")
    numbers = [p.number for p in pages]
    if any(n < 1 for n in numbers) or any(b <= a for a, b in pairwise(numbers)):
        raise SeparationError(f"page numbers must be 1-based and increasing: {numbers[:20]}")
    out = {}
    for page in pages:
        if page.probs is None:
            continue
        vector = np.asarray(page.probs, dtype=np.float64).reshape(-1)
        if vector.shape[0] != len(class_names):
            raise SeparationError(
                f"page {page.number}: {vector.shape[0]} scores for {len(class_names)} classes"
            )
        if np.isfinite(vector).all():
            out[page.number] = np.clip(vector, PROB_FLOOR, 1.0)
    return out


def _hard_runs(pages: Sequence[PageEvidence], rules: SplitRules) -> tuple[list[_Run], list[DroppedPage]]:
    """Split at separator sheets and blank pages; drop them, and blank pages under ``drop-blank``."""
    runs = [_Run("first page of the file", None, None, [])]
    dropped: list[DroppedPage] = []
    for page in pages:
        if rules.barcode and page.separator is not None:
            dropped.append(DroppedPage(page.number, f"separator sheet: {page.separator.rule}"))
            cut = f"after the separator sheet on page {page.number} ({page.separator.value!r})"
            runs.append(_Run(cut, page.separator, page.number, []))
        elif rules.drops_blank and page.blank and page.probs is not None:
            dropped.append(DroppedPage(page.number, "blank page" + (" (separates)" if rules.blank else "")))
            if rules.blank:
                _cut_at_blank(runs, page.number)
        else:
            runs[-1].pages.append(page)
    return [r for r in runs if r.pages], dropped


def _cut_at_blank(runs: list[_Run], number: int) -> None:
    """A blank page ends the run; blank pages in a row make one cut."""
    last = runs[-1]
    if last.pages:
        runs.append(_Run(f"after the blank page {number}", last.separator, last.separator_page, []))
    elif last.cut.startswith("after the blank page"):
        first = last.cut.split()[-1].split("-")[0]
        last.cut = f"after the blank pages {first}-{number}"


def _soft_cuts(
    run: _Run, probs: dict[int, np.ndarray], class_names: Sequence[str], rules: SplitRules, cost: float
) -> list[tuple[int, int, str]]:
    """(start, end, why) of the documents inside one run: every N pages, then by class."""
    n = len(run.pages)
    step = rules.every or n
    every = f"every {step} pages (pages:{step})"
    blocks = [(s, min(n, s + step), run.cut if s == 0 else every) for s in range(0, n, step)]
    if not rules.by_class or (run.separator is not None and run.separator.label is not None):
        return blocks
    out = []
    for start, end, cut in blocks:
        path = class_path([probs.get(p.number) for p in run.pages[start:end]], len(class_names), cost)
        for i, (s, e) in enumerate(_runs_of(path)):
            change = f"{class_names[path[s - 1]]} to {class_names[path[s]]}"
            why = cut if i == 0 else f"class changes from {change} (new document cost {cost:g})"
            out.append((start + s, start + e, why))
    return out


def class_path(vectors: Sequence[np.ndarray | None], n_classes: int, new_document_cost: float) -> np.ndarray:
    """The class of each page on the cheapest path: ``-log p`` per page plus λ per change of class.

    ``vectors`` are clipped probability vectors (None: no evidence). Ties keep the current class."""
    cost = np.array([np.zeros(n_classes) if v is None else -np.log(v) for v in vectors]).reshape(
        -1, n_classes
    )
    total = cost[0].copy()
    back = np.zeros(cost.shape, dtype=np.intp)
    stay = np.arange(n_classes)
    for t in range(1, cost.shape[0]):
        best = int(np.argmin(total))
        switch = total[best] + new_document_cost
        back[t] = np.where(total <= switch, stay, best)
        total = np.minimum(total, switch) + cost[t]
    path = np.empty(cost.shape[0], dtype=np.intp)
    path[-1] = int(np.argmin(total))
    for t in range(cost.shape[0] - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _runs_of(path: np.ndarray) -> list[tuple[int, int]]:
    starts = [0, *(np.flatnonzero(path[1:] != path[:-1]) + 1).tolist()]
    return list(zip(starts, [*starts[1:], len(path)], strict=True))


def _document(
    index: int,
    run: _Run,
    start: int,
    end: int,
    cut: str,
    probs: dict[int, np.ndarray],
    class_names: Sequence[str],
) -> OutputDocument:
    pages = run.pages[start:end]
    readable = [probs[p.number] for p in pages if p.number in probs]
    unreadable = tuple(p.number for p in pages if p.number not in probs)
    mean = np.mean(readable, axis=0) if readable else np.zeros(len(class_names))
    sheet = run.separator
    if sheet is not None and sheet.label is not None:
        top = class_names.index(sheet.label)
        why = f"named by the separator sheet on page {run.separator_page} ({sheet.value!r})"
    else:
        top = int(np.argmax(mean))
        why = f"top class of the mean over {len(readable)} page{'s' if len(readable) > 1 else ''}"
    named = sheet is not None and sheet.label is not None
    confidence = float(mean[top])
    second = float(np.delete(mean, top).max()) if len(class_names) > 1 else 0.0
    return OutputDocument(
        index=index,
        pages=tuple(p.number for p in pages),
        label=class_names[top] if readable or named else None,
        confidence=confidence,
        margin=max(0.0, confidence - second),
        probs=tuple(float(x) for x in mean) if readable else None,
        cut=cut,
        label_reason=why if readable or named else "no page could be read",
        named_by_separator=named,
        unreadable=unreadable,
        review_reason=_unreadable_reason(pages, probs) if unreadable else None,
    )


def _unreadable_reason(pages: list[PageEvidence], probs: dict[int, np.ndarray]) -> str:
    parts = []
    for page in pages:
        if page.number not in probs:
            why = page.error or ("scores are not finite numbers" if page.probs is not None else "unreadable")
            parts.append(f"page {page.number} could not be read: {why}")
    return "; ".join(parts)


def _failure(pages: Sequence[PageEvidence], dropped: list[DroppedPage]) -> str:
    if not pages:
        return "the file has no pages"
    separators = sum(1 for d in dropped if d.reason.startswith("separator"))
    blanks = len(dropped) - separators
    if not separators:
        return f"every page is blank ({blanks} of {len(pages)})"
    return (
        f"no page is left to deliver: {blanks} blank, {separators} separator sheet(s) of {len(pages)} pages"
    )


def decide_document(document: OutputDocument, class_names: Sequence[str], policy: Policy) -> Decision:
    """Auto or review for a whole document, by the same thresholds as a page, on its mean vector.

    A class named by a separator sheet is the document's, automatically; a document with an unreadable
    page goes to review with the reason. ``label`` is ``""`` when no class is known."""
    if document.probs is None:
        reason = document.review_reason or "no page of this document could be read"
        return Decision(document.label or "", 0.0, 0.0, {}, DecisionKind.review, reason)
    decision = decide(np.asarray(document.probs), list(class_names), policy)
    if document.named_by_separator and document.label is not None:
        decision = replace(
            decision,
            label=document.label,
            confidence=document.confidence,
            margin=document.margin,
            kind=DecisionKind.auto,
            reason=f"class {document.label_reason}",
        )
    if document.review_reason:
        reason = f"{document.review_reason}; {decision.reason}"
        decision = replace(decision, kind=DecisionKind.review, reason=reason)
    return decision
