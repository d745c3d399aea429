"""Closing the loop: reviewed pages become a labelled folder (one sub-folder per class) for ``docsort train``.

Rejected pages are skipped. A page reviewed more than once (under several model versions) is written
once, under its latest final label. Writing is idempotent: running the export again adds only new pages.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from review.errors import ExportError
from review.files import review_file
from schema.logs import get_logger
from schema.tables import Document, Page, Prediction, Review
from worker.routing import safe_component

log = get_logger(__name__)


@dataclass(frozen=True)
class LabelledPage:
    page_id: int
    label: str
    sha256: str
    page_number: int
    image_path: str | None
    decided_at: datetime


@dataclass
class ExportReport:
    written: int = 0
    unchanged: int = 0
    missing: list[str] = field(default_factory=list)
    per_class: dict[str, int] = field(default_factory=dict)


def labelled_pages(session: Session, since: datetime | None = None) -> list[LabelledPage]:
    """Each reviewed (not rejected) page once, with its latest final label; oldest decision first."""
    stmt = (
        select(
            Review.final_label, Review.decided_at, Page.id, Page.page_number, Page.image_path, Document.sha256
        )
        .join(Prediction, Prediction.id == Review.prediction_id)
        .join(Page, Page.id == Prediction.page_id)
        .join(Document, Document.id == Page.document_id)
        .where(Review.final_label.is_not(None))
        .order_by(Review.decided_at, Review.id)
    )
    if since is not None:
        stmt = stmt.where(Review.decided_at >= since)
    latest: dict[int, LabelledPage] = {}
    for label, decided_at, page_id, number, image_path, sha in session.execute(stmt):
        latest[page_id] = LabelledPage(page_id, str(label), sha, number, image_path, decided_at)
    return sorted(latest.values(), key=lambda p: (p.decided_at, p.page_id))


def _copy(src: Path, dst: Path) -> bool:
    """Copy atomically; False when an identical-size file is there already."""
    if dst.exists() and dst.stat().st_size == src.stat().st_size:
        return False
    tmp = dst.with_name(f".{dst.name}.part-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _drop_other_labels(out_dir: Path, keep: Path, name: str) -> None:
    """A page relabelled since an earlier export leaves its old class folder."""
    for other in out_dir.iterdir():
        if other.is_dir() and other != keep:
            (other / name).unlink(missing_ok=True)


def export_labels(
    pages: Iterable[LabelledPage], review_dir: Path, out_dir: Path, *, progress: bool = False
) -> ExportReport:
    """Write each page image to ``out_dir/<class>/<sha256[:16]>-p<page>.<ext>``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out_dir}: cannot create the export folder ({exc.strerror or exc})") from exc
    report = ExportReport()
    items = list(pages)
    for page in tqdm(items, desc="export", unit="page", disable=not progress):
        src = review_file(review_dir, page.image_path)
        if src is None:
            report.missing.append(f"page {page.page_id} ({page.image_path or 'no image recorded'})")
            log.warning("export.missing_image", page_id=page.page_id, image_path=page.image_path)
            continue
        folder = out_dir / safe_component(page.label)
        target = folder / f"{page.sha256[:16]}-p{page.page_number}{src.suffix.lower()}"
        try:
            folder.mkdir(exist_ok=True)
            _drop_other_labels(out_dir, folder, target.name)
            changed = _copy(src, target)
        except OSError as exc:
            raise ExportError(f"{target}: cannot write ({exc.strerror or exc})") from exc
        report.written += changed
        report.unchanged += not changed
        report.per_class[folder.name] = report.per_class.get(folder.name, 0) + 1
    return report
