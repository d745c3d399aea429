"""What the demo's pages came to: every page's outcome read back from the database, tallied by class and
held against the classes the generator drew (the labels CSV of the inbox drop)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.results import PageOutcome, job_result
from schema.manifest import load_manifest
from schema.tables import SubmissionJob
from worker.inference import apply_temperature

FAILED_ROW = "(unreadable)"
DOCUMENT = "document"  # the label of a dropped file whose documents are checked one by one


def read_labels(path: Path) -> dict[str, str]:
    """``file -> class`` from the generator's labels CSV (``broken`` for the unreadable files)."""
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["file"]: row["label"] for row in csv.DictReader(fh)}


def all_pages(session: Session) -> list[PageOutcome]:
    """Every page outcome of every job in the database, in arrival order (duplicates left out)."""
    pages: list[PageOutcome] = []
    for job_id in session.scalars(select(SubmissionJob.id).order_by(SubmissionJob.created_at)):
        result = job_result(session, job_id)
        if result is not None:
            pages.extend(p for p in result.pages if not p.duplicate)
    return pages


def filename_of(page: PageOutcome) -> str:
    return Path(page.path).name


@dataclass
class Tally:
    auto: int = 0
    review: int = 0
    failed: int = 0
    auto_right: int = 0
    auto_known: int = 0
    review_right: int = 0
    review_known: int = 0

    def add(self, kind: str, *, right: bool, known: bool) -> None:
        """Count one classified page (``auto`` or ``review``), right or wrong when its class is known."""
        prefix = "auto" if kind == "auto" else "review"
        setattr(self, prefix, getattr(self, prefix) + 1)
        setattr(self, f"{prefix}_right", getattr(self, f"{prefix}_right") + int(right and known))
        setattr(self, f"{prefix}_known", getattr(self, f"{prefix}_known") + int(known))


@dataclass
class Outcomes:
    """Outcomes of the dropped files: per predicted class, and the reasons of the failures."""

    by_class: dict[str, Tally] = field(default_factory=dict)
    reasons: list[tuple[str, str]] = field(default_factory=list)
    files_done: set[str] = field(default_factory=set)
    pending: int = 0

    def total(self) -> Tally:
        out = Tally()
        for t in self.by_class.values():
            for name in vars(out):
                setattr(out, name, getattr(out, name) + getattr(t, name))
        return out

    @property
    def kinds(self) -> Counter[str]:
        t = self.total()
        return Counter({"auto": t.auto, "review": t.review, "failed": t.failed})


def collect(pages: list[PageOutcome], labels: dict[str, str]) -> Outcomes:
    """Tally the pages of the files named in ``labels``; a file counts as done when no page is pending."""
    out = Outcomes()
    pending_files: set[str] = set()
    for page in pages:
        name = filename_of(page)
        if name not in labels:
            continue
        if page.status == "pending":
            out.pending += 1
            pending_files.add(name)
            continue
        out.files_done.add(name)
        truth = labels[name]
        if page.status == "error":
            out.by_class.setdefault(FAILED_ROW, Tally()).failed += 1
            out.reasons.append((name, page.error or "failed"))
            continue
        tally = out.by_class.setdefault(page.label or "?", Tally())
        known = truth not in ("broken", DOCUMENT)  # a document file's truth is in the documents table
        tally.add(page.decision or "review", right=page.label == truth, known=known)
    out.files_done -= pending_files
    return out


def _share(right: int, known: int) -> str:
    return "-" if known == 0 else f"{right}/{known} ({100.0 * right / known:.0f}%)"


def outcome_table(outcomes: Outcomes) -> Table:
    """The table the demo prints: auto, review and failed pages by predicted class, with accuracy."""
    table = Table(title="outcomes of the inbox drop (accuracy against the classes the generator drew)")
    for column in ("predicted class", "auto", "review", "failed", "auto correct", "review correct"):
        table.add_column(column, justify="left" if column == "predicted class" else "right")
    rows = sorted(outcomes.by_class.items(), key=lambda kv: (kv[0] == FAILED_ROW, kv[0]))
    for name, t in [*rows, ("total", outcomes.total())]:
        table.add_row(
            name,
            str(t.auto),
            str(t.review),
            str(t.failed),
            _share(t.auto_right, t.auto_known),
            _share(t.review_right, t.review_known),
            end_section=name == rows[-1][0] if rows else False,
        )
    return table


def review_threshold(version_dir: Path, review_fraction: float) -> tuple[float, int]:
    """The confidence below which about ``review_fraction`` of the validation pages fall (with the
    version's temperature applied, as the worker applies it), and the number of validation pages."""

    manifest = load_manifest(version_dir, verify=False)
    scores = json.loads((version_dir / "report" / "val_scores.json").read_text(encoding="utf-8"))
    probs = apply_temperature(np.asarray(scores["probs"], dtype=np.float64), manifest.temperature)
    confidence = probs.max(axis=1)
    threshold = float(np.quantile(confidence, review_fraction, method="higher"))
    return min(threshold, 0.999999), len(confidence)


def calibrated_review_rate(version_dir: Path) -> tuple[float, float] | None:
    """(target accuracy of auto pages, share of validation pages sent to review) of the thresholds that
    ``docsort train`` chose, when the manifest records them."""
    confidence = load_manifest(version_dir, verify=False).metrics.get("confidence") or {}
    target, rate = confidence.get("target_auto_accuracy"), confidence.get("review_rate")
    return None if target is None or rate is None else (float(target), float(rate))
