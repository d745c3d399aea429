"""Review items as the worker writes them: document, page PNG, prediction, model decision of kind review."""

from __future__ import annotations

import hashlib
import itertools
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy.orm import Session

from review.security import create_operator
from schema.enums import DecisionKind, DecisionOrigin, DocumentState
from schema.models import Document, Operator, Page, Prediction, RoutingDecision
from schema.settings import DocsortSettings

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@dataclass(frozen=True)
class Item:
    prediction_id: int
    page_id: int
    document_id: int
    sha256: str
    image_path: Path
    cam_path: Path
    original: Path


def page_png(path: Path, label: str, shade: int, size: tuple[int, int] = (240, 320)) -> Path:
    """A small page-like PNG: a grey sheet with a title bar and text lines."""
    image = Image.new("RGB", size, (shade, shade, shade))
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.rectangle([16, 16, w - 16, 44], fill=(40, 60, 90))
    draw.text((22, 24), label.upper(), fill=(255, 255, 255))
    for y in range(60, h - 30, 14):
        draw.line([20, y, w - 20 - (y * 7) % 60, y], fill=(90, 90, 90), width=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def cam_png(path: Path, page: Path) -> Path:
    """The page with a warm blob over its upper half, as a CAM overlay looks."""
    base = Image.open(page).convert("RGB")
    heat = Image.new("RGB", base.size, (0, 0, 160))
    draw = ImageDraw.Draw(heat)
    w, h = base.size
    for i, color in enumerate([(40, 120, 255), (60, 220, 120), (250, 220, 40), (240, 60, 30)]):
        pad = 18 * i
        draw.ellipse([20 + pad, 20 + pad, w - 20 - pad, h // 2 + 30 - pad // 2], fill=color)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.blend(base, heat, 0.45).save(path)
    return path


def make_item(
    session: Session,
    settings: DocsortSettings,
    *,
    label: str = "invoice",
    scores: dict[str, float] | None = None,
    source: str = "watch",
    model_name: str = "docsort",
    model_version: str = "v1",
    filename: str | None = None,
    waiting_for: timedelta = timedelta(minutes=10),
    page_count: int = 1,
    page_number: int = 1,
) -> Item:
    """One pending review item; commits."""
    n = next(_counter)
    scores = scores or {"invoice": 0.48, "letter": 0.41, "form": 0.11}
    sha = hashlib.sha256(f"page-{n}-{datetime.now(UTC).isoformat()}".encode()).hexdigest()
    review_dir = settings.dir("review")
    image = page_png(review_dir / "pages" / f"{sha[:12]}.png", label, 235 - (n * 17) % 60)
    cam = cam_png(review_dir / "cam" / f"{sha[:12]}.png", image)
    original = settings.dir("archive") / f"{sha}.png"
    shutil.copyfile(image, original)
    when = datetime.now(UTC) - waiting_for
    document = Document(
        sha256=sha,
        source=source,
        source_ref=f"/srv/inbox/{filename or f'scan-{n:04d}.png'}",
        filename=filename or f"scan-{n:04d}.png",
        media_type="image/png",
        page_count=page_count,
        state=DocumentState.done,
        stored_path=str(original),
        received_at=when,
    )
    session.add(document)
    session.flush()
    page = Page(
        document_id=document.id, page_number=page_number, width=240, height=320, image_path=str(image)
    )
    session.add(page)
    session.flush()
    top = max(scores.values())
    second = sorted(scores.values())[-2] if len(scores) > 1 else 0.0
    prediction = Prediction(
        page_id=page.id,
        model_name=model_name,
        model_version=model_version,
        label=label,
        confidence=top,
        margin=top - second,
        scores=scores,
        created_at=when,
    )
    session.add(prediction)
    session.flush()
    session.add(
        RoutingDecision(
            document_id=document.id,
            page_id=page.id,
            prediction_id=prediction.id,
            origin=DecisionOrigin.model,
            kind=DecisionKind.review,
            label=label,
            reason=f"confidence {top:.3f} below threshold 0.900",
            cam_path=str(cam),
            decided_at=when,
        )
    )
    session.commit()
    return Item(prediction.id, page.id, document.id, sha, image, cam, original)


def make_auto(
    session: Session, *, label: str, when: datetime, model_name: str = "docsort", model_version: str = "v1"
) -> int:
    """A page the model routed automatically at ``when`` (no images: it never reaches review); commits."""
    n = next(_counter)
    sha = hashlib.sha256(f"auto-{n}-{when.isoformat()}".encode()).hexdigest()
    document = Document(
        sha256=sha, source="api", filename=f"auto-{n:04d}.pdf", page_count=1, received_at=when
    )
    session.add(document)
    session.flush()
    page = Page(document_id=document.id, page_number=1)
    session.add(page)
    session.flush()
    prediction = Prediction(
        page_id=page.id,
        model_name=model_name,
        model_version=model_version,
        label=label,
        confidence=0.97,
        margin=0.9,
        scores={label: 0.97},
        created_at=when,
    )
    session.add(prediction)
    session.flush()
    session.add(
        RoutingDecision(
            document_id=document.id,
            page_id=page.id,
            prediction_id=prediction.id,
            origin=DecisionOrigin.model,
            kind=DecisionKind.auto,
            label=label,
            decided_at=when,
            applied_at=when,
        )
    )
    session.commit()
    return prediction.id


def make_operator(session: Session, name: str, password: str = PASSWORD) -> Operator:
    return create_operator(session, name, password)
