"""The retraining loop: operators' answers become training pages, a candidate is trained, compared
with the active version on held-out pages, and activated only when better.

1. :func:`add_operator_pages` writes every page an operator gave a class (reviewed pages and the
   pages of answered audit items, :mod:`worker.labels`) into the training folder as
   ``<class>/operator/<sha256[:16]>-p<page>.png``, and records where each came from in
   ``provenance.jsonl`` at the folder's root (one JSON object per page: file, class, the received
   file's sha256 and page number, operator, decision time, review or audit, the model that was judged
   and what it said). The image is the page image saved for the operator or, for an audited page
   without one, the page rendered again from the received file kept in the archive. A page
   relabelled since an earlier run leaves its old class folder. Running it again adds only new pages.
2. :func:`run_loop` trains a candidate on the folder with a held-out test split (20% unless asked),
   its thresholds chosen for the active version's target and confidence level; compares the two on
   the held-out pages (:mod:`trainer.compare`, which states the rule); and activates the candidate
   when the rule says it is better (``auto``), always, or never.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from schema.db import session_scope
from schema.files import copy_atomic, write_atomic, write_text_atomic
from schema.logs import get_logger
from schema.manifest import load_manifest
from trainer.compare import Comparison, compare_versions
from trainer.errors import TrainerError
from trainer.recipe import TrainOptions
from worker.imaging import UnreadableImage, preview_pages
from worker.labels import OperatorLabel, as_utc, operator_labels
from worker.registry import activate, active_version
from worker.routing import safe_component

log = get_logger(__name__)

PROVENANCE_FILE = "provenance.jsonl"
OPERATOR_DIR = "operator"
DEFAULT_TEST_FRACTION = 0.2
Activate = Literal["auto", "always", "never"]


@dataclass
class AddedPages:
    written: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    per_class: Counter[str] = field(default_factory=Counter)


def page_file(item: OperatorLabel) -> str:
    return f"{item.sha256[:16]}-p{item.page_number}.png"


def _write_page(item: OperatorLabel, target: Path, max_side: int) -> bool:
    """The operator's image of the page, or the page rendered from the kept received file; False when
    neither exists."""
    if item.image_path and Path(item.image_path).is_file():
        copy_atomic(Path(item.image_path), target)
        return True
    if item.stored_path and Path(item.stored_path).is_file():
        try:
            pages = dict(preview_pages(Path(item.stored_path), {item.page_number}, max_side))
        except UnreadableImage as exc:
            log.warning("loop.page_unreadable", file=item.stored_path, reason=exc.reason)
            return False
        if item.page_number in pages:
            write_atomic(target, lambda tmp: pages[item.page_number].save(tmp, format="PNG"))
            return True
    return False


def _record(item: OperatorLabel, rel: str) -> dict[str, object]:
    return {
        "file": rel,
        "label": item.label,
        "sha256": item.sha256,
        "page": item.page_number,
        "operator": item.operator,
        "decided_at": as_utc(item.decided_at).isoformat(),
        "source": item.source,
        "model": item.model,
        "model_label": item.model_label,
        "added_at": datetime.now(UTC).isoformat(),
    }


def read_provenance(data_dir: Path) -> dict[str, dict[str, object]]:
    path = data_dir / PROVENANCE_FILE
    if not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {str(r["file"]): r for r in records}


def add_operator_pages(
    session: Session,
    data_dir: Path,
    class_names: list[str],
    *,
    since: datetime | None = None,
    max_side: int = 1600,
) -> AddedPages:
    """Write the operator-labelled pages into ``data_dir/<class>/operator/`` with their provenance."""
    added = AddedPages()
    provenance = read_provenance(data_dir)
    for item in operator_labels(session, since):
        if item.label not in class_names:
            added.skipped.append(
                f"page {item.page_number} of {item.sha256[:16]}: {item.label!r} is not a class"
            )
            continue
        name = page_file(item)
        rel = f"{safe_component(item.label)}/{OPERATOR_DIR}/{name}"
        for other in class_names:  # relabelled since an earlier run: it leaves its old class
            if other != item.label:
                old = data_dir / safe_component(other) / OPERATOR_DIR / name
                old.unlink(missing_ok=True)
                provenance.pop(f"{safe_component(other)}/{OPERATOR_DIR}/{name}", None)
        target = data_dir / rel
        if target.is_file() and rel in provenance:
            added.unchanged += 1
        elif _write_page(item, target, max_side):
            added.written += 1
            provenance[rel] = _record(item, rel)
        else:
            added.skipped.append(f"page {item.page_number} of {item.sha256[:16]}: no image and no kept file")
            continue
        added.per_class[item.label] += 1
    lines = [json.dumps(provenance[k], sort_keys=True) for k in sorted(provenance)]
    write_text_atomic(data_dir / PROVENANCE_FILE, "".join(f"{line}\n" for line in lines))
    return added


@dataclass
class LoopOutcome:
    version_dir: Path
    added: AddedPages
    comparison: Comparison | None
    activated: bool
    reason: str


def _should_activate(mode: Activate, comparison: Comparison | None, version_dir: Path) -> tuple[bool, str]:
    if mode == "always":
        return True, "activated: --activate always"
    if mode == "never":
        return False, "not activated: --activate never"
    if comparison is None:
        g = load_manifest(version_dir).thresholds.guarantee
        met = g is not None and g.n_auto > 0
        return met, "no active version to compare with: " + (
            "activated" if met else "its guarantee is not met"
        )
    return (
        comparison.better,
        "activated: better by the rule" if comparison.better else "not activated: not better",
    )


def run_loop(
    opts: TrainOptions,
    sessions: sessionmaker[Session],
    *,
    model_name: str | None = None,
    mode: Activate = "auto",
    since: datetime | None = None,
) -> LoopOutcome:
    """Add operator pages to ``opts.data_dir``, train a candidate of the active version of
    ``model_name`` (None: the most recently activated), compare it, activate it by ``mode``."""
    from trainer.train import train  # TensorFlow: only when a candidate is trained

    with session_scope(sessions) as session:
        active = active_version(session, model_name)
        active_dir = Path(active.path) if active is not None else None
        if active_dir is not None:
            manifest = load_manifest(active_dir)
            names, g = manifest.class_names, manifest.thresholds.guarantee
            target = manifest.thresholds.target_auto_accuracy or (g.target if g else opts.auto_accuracy)
            opts = replace(
                opts,
                name=manifest.name,
                auto_accuracy=target,
                confidence_level=g.confidence_level if g else opts.confidence_level,
            )
        else:
            names = sorted(
                p.name for p in opts.data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
            )
        added = add_operator_pages(session, opts.data_dir, names, since=since)
    require_classes(opts.data_dir, names)
    log.info("loop.pages_added", written=added.written, unchanged=added.unchanged, skipped=len(added.skipped))
    opts = replace(opts, test_fraction=opts.test_fraction or DEFAULT_TEST_FRACTION)
    version_dir = train(opts)
    comparison = compare_versions(version_dir, active_dir, progress=opts.progress) if active_dir else None
    go, reason = _should_activate(mode, comparison, version_dir)
    if go:
        with session_scope(sessions) as session:
            candidate = load_manifest(version_dir)
            activate(session, opts.models_dir, candidate.name, candidate.version)
    return LoopOutcome(version_dir, added, comparison, go, reason)


def require_classes(data_dir: Path, names: list[str]) -> None:
    """The training folder has exactly the version's classes as subfolders (so the two compare)."""
    missing = [n for n in names if not (data_dir / n).is_dir()]
    if missing:
        raise TrainerError(f"{data_dir}: no pages of class(es) {missing} of the active version ({names})")
    unknown = sorted(
        p.name
        for p in data_dir.iterdir()
        if p.is_dir() and p.name not in names and not p.name.startswith(".")
    )
    if unknown:
        raise TrainerError(
            f"{data_dir}: subfolders {unknown} are not classes of the active version ({names})"
        )
