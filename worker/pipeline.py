"""The pipeline's small steps: decode -> infer -> explain -> decide -> record -> route.

Each step works without a broker. The Celery task (:mod:`worker.tasks` via :mod:`worker.process`),
``docsort classify`` and the review web app (:func:`route_reviewed`) all use these same steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from schema.enums import DecisionKind, DecisionOrigin
from schema.errors import DocsortError
from schema.logs import get_logger
from schema.manifest import InputSpec
from schema.settings import DocsortSettings
from schema.tables import Prediction, RoutingDecision
from worker.cam import preview, save_overlay, save_png
from worker.decide import Decision, Policy, decide
from worker.imaging import iter_pages, media_type_of, to_model_input
from worker.inference import LoadedModel
from worker.record import decision_for, ensure_decision, now
from worker.route import page_content, route_item, route_item_for
from worker.routing import QueueSender, RoutingRules
from worker.settings import WorkerSettings, as_worker_settings

log = get_logger(__name__)


class ReviewRoutingError(DocsortError):
    """An operator decision cannot be applied (unknown prediction, unknown label)."""


@dataclass
class PreparedPage:
    """One decoded page: its size and the model's input. The full page is not kept (memory stays small);
    ``preview`` only when asked for."""

    number: int
    width: int
    height: int
    model_input: np.ndarray
    preview: Image.Image | None = None


@dataclass
class DecodedDocument:
    path: Path
    media_type: str
    pages: list[PreparedPage]


@dataclass
class PageScores:
    probs: np.ndarray  # classes
    cam: np.ndarray | None  # h x w x classes
    latency_ms: float


def decode_document(path: Path, spec: InputSpec, preview_side: int | None = None) -> DecodedDocument:
    """Step 1: every page of a file, ready for the model; raises UnreadableImage naming the reason.

    With ``preview_side``, each page also keeps a preview of that longest side (the worker does not ask:
    it renders previews of review pages only, with :func:`render_previews`).
    """
    media = media_type_of(path)
    pages: list[PreparedPage] = []
    for page in iter_pages(path):
        image = page.image
        model_input = to_model_input(image, (spec.height, spec.width), spec.resize, spec.pad_value)
        small = preview(image, preview_side) if preview_side else None
        pages.append(PreparedPage(page.number, image.width, image.height, model_input, small))
        image.close()
    return DecodedDocument(Path(path), media, pages)


def render_previews(path: Path, numbers: set[int], max_side: int) -> dict[int, Image.Image]:
    """The wanted pages again, scaled to ``max_side`` at most (for review images and CAM overlays)."""
    found: dict[int, Image.Image] = {}
    if not numbers:
        return found
    for page in iter_pages(path):
        if page.number in numbers:
            found[page.number] = preview(page.image, max_side)
        if len(found) == len(numbers):
            break
    return found


def infer(model: LoadedModel, documents: list[DecodedDocument]) -> list[list[PageScores]]:
    """Step 2: all pages of all documents through the model as one batch; scores per document, per page."""
    inputs = [p.model_input for d in documents for p in d.pages]
    if not inputs:
        return [[] for _ in documents]
    out = model.run(np.stack(inputs))
    per_page_ms = out.seconds * 1000.0 / len(inputs)
    result: list[list[PageScores]] = []
    index = 0
    for doc in documents:
        scores = []
        for _ in doc.pages:
            cam = out.cam[index] if out.cam is not None else None
            scores.append(PageScores(out.probs[index], cam, per_page_ms))
            index += 1
        result.append(scores)
    return result


def decide_page(scores: PageScores, model: LoadedModel, policy: Policy) -> Decision:
    """Step 4: auto or review for one page."""
    return decide(scores.probs, model.manifest.class_names, policy)


def policy_for(model: LoadedModel, settings: WorkerSettings) -> Policy:
    return Policy.from_thresholds(model.manifest.thresholds, settings.confidence, settings.margin)


def review_files(review_dir: Path, sha256: str, page_number: int, model: LoadedModel) -> tuple[Path, Path]:
    """Where a review page's image and its CAM overlay are saved (stable names: a retry overwrites)."""
    folder = review_dir / sha256[:2]
    stem = f"{sha256[:16]}-p{page_number}"
    return folder / f"{stem}.png", folder / f"{stem}-{model.name}-{model.version}-cam.png"


def explain(
    page_image: Image.Image,
    page_number: int,
    scores: PageScores,
    decision: Decision,
    model: LoadedModel,
    review_dir: Path,
    sha256: str,
) -> tuple[Path, Path | None]:
    """Step 3 (for review pages): save the page image and its CAM overlay; (image path, overlay path)."""
    image_path, cam_path = review_files(review_dir, sha256, page_number, model)
    save_png(page_image, image_path)
    if scores.cam is None:
        return image_path, None
    class_index = model.manifest.class_names.index(decision.label)
    save_overlay(page_image, scores.cam, class_index, model.manifest.input, cam_path)
    return image_path, cam_path


def route_reviewed(
    session: Session,
    settings: DocsortSettings,
    prediction_id: int,
    label: str | None,
    *,
    sender: QueueSender | None = None,
) -> RoutingDecision:
    """Apply an operator's decision: route the page by the same rules as an automatic decision.

    ``label`` None means the operator rejected the page as unreadable: it goes to the rules' ``rejected``
    destination and the decision's kind is ``failed``. Records a RoutingDecision with origin=operator.
    Idempotent: a second call returns the first call's decision and delivers nothing again. Flushes but
    does not commit: the caller commits (with its Review row).
    """
    prediction = session.get(Prediction, prediction_id)
    if prediction is None:
        raise ReviewRoutingError(f"prediction {prediction_id} does not exist")
    existing = decision_for(session, prediction.id, DecisionOrigin.operator)
    if existing is not None and existing.applied_at is not None:
        return existing
    ws = as_worker_settings(settings)
    known = list(prediction.scores.keys())
    if label is not None and known and label not in known:
        raise ReviewRoutingError(f"label {label!r} is not a class of model {prediction.model_name} ({known})")
    page = prediction.page
    document = page.document
    rules = RoutingRules.load(ws.routes_file)
    with page_content(document, page, ws) as content:
        rule, where = route_item(route_item_for(document, page, label, content), rules, ws, sender)
    if existing is not None:
        existing.destination, existing.rule, existing.applied_at = where, rule, now()
        session.flush()
        return existing
    kind = DecisionKind.auto if label is not None else DecisionKind.failed
    reason = "confirmed or relabelled by an operator" if label is not None else "rejected by an operator"
    decision, _ = ensure_decision(
        session,
        {
            "document_id": document.id,
            "page_id": page.id,
            "prediction_id": prediction.id,
            "origin": DecisionOrigin.operator,
            "kind": kind,
            "label": label,
            "destination": where,
            "rule": rule,
            "reason": reason,
            "applied_at": now(),
        },
    )
    log.info("review.routed", prediction_id=prediction.id, label=label, where=where)
    return decision
