"""A multi-page document under review as the worker records it: a TIFF of several pages, each page with
its image, CAM, prediction and model decision of kind review, and one output document under review."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy.orm import Session

from schema.enums import DecisionKind, DecisionOrigin, DocumentState
from schema.settings import DocsortSettings
from schema.tables import Document, OutputDocument, Page, Prediction, RoutingDecision
from tests.support.review_items import cam_png, page_png

SCORES = {"invoice": 0.48, "letter": 0.41, "form": 0.11}


@dataclass(frozen=True)
class ReviewDocument:
    document_id: int
    prediction_ids: list[int]
    original: Path


def make_document(
    session: Session,
    settings: DocsortSettings,
    labels: list[str],
    *,
    filename: str = "stack.tif",
    waiting_for: timedelta = timedelta(minutes=30),
) -> ReviewDocument:
    """One document of ``len(labels)`` pages under review (the model's class: the first page's). Commits."""
    when = datetime.now(UTC) - waiting_for
    sha = hashlib.sha256(f"{filename}-{labels}-{datetime.now(UTC).isoformat()}".encode()).hexdigest()
    review_dir = settings.dir("review")
    images = [
        page_png(review_dir / "pages" / f"{sha[:12]}-{n}.png", f"{label} p{n}", 246 - 4 * n)
        for n, label in enumerate(labels, start=1)
    ]
    original = settings.dir("archive") / f"{sha}.tif"
    frames = [Image.open(i).convert("RGB") for i in images]
    frames[0].save(original, save_all=True, append_images=frames[1:])
    document = Document(
        sha256=sha, source="watch", source_ref=f"/srv/inbox/{filename}", filename=filename,
        media_type="image/tiff", page_count=len(labels), state=DocumentState.done,
        stored_path=str(original), received_at=when,
    )  # fmt: skip
    session.add(document)
    session.flush()
    ids = []
    for n, (label, image) in enumerate(zip(labels, images, strict=True), start=1):
        page = Page(document_id=document.id, page_number=n, width=240, height=320, image_path=str(image))
        session.add(page)
        session.flush()
        scores = {label: SCORES["invoice"], **{c: v for c, v in SCORES.items() if c != label}}
        scores = {c: scores.get(c, 0.0) for c in SCORES}
        prediction = Prediction(
            page_id=page.id, model_name="docsort", model_version="v1", label=label, confidence=0.48,
            margin=0.07, scores=scores, created_at=when,
        )  # fmt: skip
        session.add(prediction)
        session.flush()
        session.add(
            RoutingDecision(
                document_id=document.id, page_id=page.id, prediction_id=prediction.id,
                origin=DecisionOrigin.model, kind=DecisionKind.review, label=label,
                reason="confidence 0.480 below threshold 0.900",
                cam_path=str(cam_png(review_dir / "cam" / f"{sha[:12]}-{n}.png", image)), decided_at=when,
            )
        )  # fmt: skip
        ids.append(prediction.id)
    session.add(
        OutputDocument(
            document_id=document.id, origin=DecisionOrigin.model, generation=0, seq=1,
            pages=list(range(1, len(labels) + 1)), kind=DecisionKind.review, label=labels[0],
            confidence=0.48, margin=0.07, scores=SCORES, reason="confidence 0.480 below threshold 0.900",
            model_name="docsort", model_version="v1", decided_at=when,
        )
    )  # fmt: skip
    session.commit()
    return ReviewDocument(document.id, ids, original)
