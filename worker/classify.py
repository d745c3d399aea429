"""Inline classification (``docsort classify``): the job's decode, infer and decide steps in one
process, with no broker and no database. One result per page; a file that fails gives one error result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from schema.files import visible_files
from schema.logs import get_logger
from worker.decide import Policy, decide
from worker.decode import DecodedFile, decode_file
from worker.imaging import UnreadableImage
from worker.infer import infer
from worker.inference import LoadedModel

log = get_logger(__name__)


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; a folder's files (recursively, sorted, hidden ones skipped)."""
    for path in paths:
        if path.is_dir():
            yield from visible_files(path)
        else:
            yield path


def error_result(path: Path, reason: str) -> dict[str, Any]:
    return {
        "path": str(path),
        "page": None,
        "status": "error",
        "label": None,
        "confidence": None,
        "decision": None,
        "error": reason,
    }


def _page_results(model: LoadedModel, policy: Policy, docs: list[DecodedFile]) -> Iterator[dict[str, Any]]:
    for doc, scores in zip(docs, infer(model, docs), strict=True):
        for page, page_scores in zip(doc.pages, scores, strict=True):
            decision = decide(page_scores.probs, model.manifest.class_names, policy)
            yield {
                "path": str(doc.path),
                "page": page.number,
                "status": "ok",
                "label": decision.label,
                "confidence": round(decision.confidence, 6),
                "decision": decision.kind.value,
                "error": None,
                "margin": round(decision.margin, 6),
                "scores": {k: round(v, 6) for k, v in decision.scores.items()},
            }


def classify_paths(paths: Iterable[Path], model: LoadedModel, policy: Policy) -> Iterator[dict[str, Any]]:
    """Results in input order; pages of several files go through the model together, up to a batch."""
    pending: list[DecodedFile] = []
    n_pages = 0
    for path in expand_paths(paths):
        try:
            doc = decode_file(path, model.manifest.input)
        except UnreadableImage as exc:
            yield from _page_results(model, policy, pending)
            pending, n_pages = [], 0
            yield error_result(path, exc.reason)
            continue
        pending.append(doc)
        n_pages += len(doc.pages)
        if n_pages >= model.batch_size:
            yield from _page_results(model, policy, pending)
            pending, n_pages = [], 0
    yield from _page_results(model, policy, pending)
