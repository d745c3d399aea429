"""Review items as the worker writes them: document, page PNG, prediction, model decision of kind review."""

from __future__ import annotations

import hashlib
import itertools
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy.orm import Session

from review.security import create_operator
from schema.enums import DecisionKind, DecisionOrigin, DocumentState
from schema.settings import DocsortSettings
from schema.tables import Document, Operator, OutputDocument, Page, Prediction, RoutingDecision

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
    """A page-like PNG: paper of the given shade, a letterhead, a title, text lines and a boxed table."""
    w, h = size
    image = Image.new("RGB", size, (shade, shade, max(0, shade - 6)))
    draw = ImageDraw.Draw(image)
    u = w / 240  # drawing unit: the layout scales with the page
    ink = (55, 60, 68)
    draw.rectangle([16 * u, 14 * u, 64 * u, 34 * u], fill=(47, 95, 179))
    for i in range(3):
        draw.line(
            [150 * u, (16 + 6 * i) * u, (222 - 14 * i) * u, (16 + 6 * i) * u],
            fill=ink,
            width=max(1, round(u)),
        )
    title = ImageFont.load_default(size=max(10, round(12 * u)))
    draw.text((16 * u, 46 * u), label.upper(), fill=(25, 30, 38), font=title)
    y = 70 * u
    while y < h * 0.55:
        draw.line(
            [16 * u, y, (224 - (y // u * 7) % 70) * u, y], fill=(120, 124, 130), width=max(1, round(1.5 * u))
        )
        y += 9 * u
    top, rows = h * 0.6, 5
    for r in range(rows + 1):
        yy = top + r * 14 * u
        draw.line([16 * u, yy, 224 * u, yy], fill=(150, 154, 160), width=1)
    for xx in (16, 120, 170, 224):
        draw.line([xx * u, top, xx * u, top + rows * 14 * u], fill=(150, 154, 160), width=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=False, compress_level=1)
    return path


def scan_like(path: Path, size: tuple[int, int], seed: int = 1) -> Path:
    """A page as a scanner gives it (``page_png`` with sensor noise), at ``size``."""
    page_png(path, "invoice", 246, size)
    rgb = np.asarray(Image.open(path), dtype=np.int16)
    noise = np.random.default_rng(seed).normal(0, 5, rgb.shape[:2])[..., None]
    Image.fromarray(np.clip(rgb + noise, 0, 255).astype(np.uint8)).save(path)
    return path


def _jet(v: np.ndarray) -> np.ndarray:
    """A blue-cyan-yellow-red colour ramp for values in 0..1."""
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def cam_png(path: Path, page: Path) -> Path:
    """The page under a smooth heat map that is hottest on its title and table, as a CAM overlay looks."""
    base = Image.open(page).convert("RGB")
    w, h = base.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    heat = np.zeros((h, w), np.float32)
    for cx, cy, sx, sy, weight in [
        (0.25, 0.18, 0.22, 0.08, 1.0),
        (0.5, 0.7, 0.35, 0.1, 0.8),
        (0.8, 0.1, 0.1, 0.05, 0.5),
    ]:
        heat += weight * np.exp(-(((xx / w - cx) / sx) ** 2 + ((yy / h - cy) / sy) ** 2))
    heat /= heat.max()
    overlay = Image.fromarray(_jet(heat))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.blend(base, overlay, 0.45).save(path, compress_level=1)
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
    size: tuple[int, int] = (240, 320),
) -> Item:
    """One pending review item; commits."""
    n = next(_counter)
    scores = scores or {"invoice": 0.48, "letter": 0.41, "form": 0.11}
    sha = hashlib.sha256(f"page-{n}-{datetime.now(UTC).isoformat()}".encode()).hexdigest()
    review_dir = settings.dir("review")
    image = page_png(review_dir / "pages" / f"{sha[:12]}.png", label, 250 - (n * 7) % 18, size)
    cam = cam_png(review_dir / "cam" / f"{sha[:12]}.png", image)
    if page_count > 1:  # the received file holds page_count pages; this item is one of them
        original = settings.dir("archive") / f"{sha}.tif"
        with Image.open(image) as frame:
            frames = [frame.convert("RGB")] * page_count
            frames[0].save(original, save_all=True, append_images=frames[1:])
    else:
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
    session.add(
        OutputDocument(
            document_id=document.id,
            origin=DecisionOrigin.model,
            generation=0,
            seq=1,
            pages=[page_number],
            kind=DecisionKind.review,
            label=label,
            confidence=top,
            margin=top - second,
            scores=scores,
            reason=f"confidence {top:.3f} below threshold 0.900",
            model_name=model_name,
            model_version=model_version,
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
