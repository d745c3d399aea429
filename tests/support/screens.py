"""A busy day of review data for the screenshot test: five classes, a day of traffic, a queue, reviews."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from review.settings import ReviewSettings
from schema.enums import DecisionKind, DecisionOrigin, ReviewAction
from schema.tables import Document, ModelVersion, Page, Prediction, Review, ReviewClaim, RoutingDecision
from tests.support.review_items import make_item, make_operator

CLASSES = ["invoice", "letter", "form", "receipt", "id_card"]
SOURCES = ["watch", "api", "submit"]


def _scores(rng: random.Random, top: str, confidence: float) -> dict[str, float]:
    rest = [c for c in CLASSES if c != top]
    weights = [rng.random() + 0.05 for _ in rest]
    scale = (1 - confidence) / sum(weights)
    scores = dict(zip(rest, (w * scale for w in weights), strict=True))
    scores[top] = confidence
    return {c: round(scores[c], 4) for c in CLASSES}


def _traffic(s: Session, rng: random.Random, now: datetime, operators: list[int]) -> None:
    """A day of pages: automatic routing with a daytime peak, and the share sent to review."""
    made: list[tuple[Document, Page, Prediction, DecisionKind, datetime]] = []
    for hours_ago in range(24, 0, -1):
        hour = now - timedelta(hours=hours_ago)
        busy = 4 + int(14 * max(0.0, 1 - abs(hour.hour - 13) / 7))
        for k in range(busy + rng.randint(0, 3)):
            when = hour + timedelta(minutes=rng.randint(0, 59))
            label = rng.choices(CLASSES, weights=[5, 4, 3, 2, 1])[0]
            kind = DecisionKind.review if rng.random() < 0.18 else DecisionKind.auto
            version = "v3" if hours_ago < 9 else "v2"
            sha = hashlib.sha256(f"traffic-{hours_ago}-{k}-{now}".encode()).hexdigest()
            doc = Document(
                sha256=sha, source=rng.choice(SOURCES), filename=f"batch-{sha[:6]}.pdf", page_count=1
            )
            page = Page(document=doc, page_number=1)
            conf = rng.uniform(0.93, 0.999) if kind == DecisionKind.auto else rng.uniform(0.4, 0.85)
            pred = Prediction(
                page=page, model_name="docsort", model_version=version, label=label, confidence=conf,
                scores=_scores(rng, label, conf), created_at=when,
            )  # fmt: skip
            s.add_all([doc, page, pred])
            made.append((doc, page, pred, kind, when))
    s.flush()
    decisions = [
        RoutingDecision(
            document_id=doc.id, page_id=page.id, prediction_id=pred.id, origin=DecisionOrigin.model,
            kind=kind, label=pred.label, decided_at=when,
        )
        for doc, page, pred, kind, when in made
    ]  # fmt: skip
    s.add_all(decisions)
    s.add_all(
        _review_of(rng, pred, operators, min(when + timedelta(minutes=rng.randint(3, 50)), now))
        for _, _, pred, kind, when in made
        if kind == DecisionKind.review
    )
    s.flush()


def _review_of(rng: random.Random, pred: Prediction, operators: list[int], when: datetime) -> Review:
    roll = rng.random()
    if roll < 0.06:
        action, final = ReviewAction.reject, None
    elif roll < 0.3:
        action, final = ReviewAction.relabel, rng.choice([c for c in CLASSES if c != pred.label])
    else:
        action, final = ReviewAction.confirm, pred.label
    return Review(
        prediction_id=pred.id, operator_id=rng.choice(operators), action=action, final_label=final,
        opened_at=when - timedelta(seconds=20), decided_at=when, duration_ms=rng.randint(4000, 30000),
    )  # fmt: skip


def seed_busy_day(s: Session, settings: ReviewSettings, now: datetime) -> int:
    """Fill the database; returns the id of the oldest waiting page (with a full-size page image)."""
    rng = random.Random(7)
    operators = [make_operator(s, name).id for name in ("alice", "bob", "carol")]
    s.add(
        ModelVersion(
            name="docsort", version="v3", sha256="3" * 64, path="/models/docsort/v3", manifest={}, active=True
        )
    )
    s.add(ModelVersion(name="docsort", version="v2", sha256="2" * 64, path="/models/docsort/v2", manifest={}))
    _traffic(s, rng, now, operators)
    s.commit()
    waits = [timedelta(hours=h) for h in (7.4, 5.2, 3.9, 2.5, 1.7, 1.1, 0.8, 0.5, 0.3, 0.2, 0.1, 0.02)]
    first = 0
    for i, wait in enumerate(waits):
        label = CLASSES[(i * 3) % len(CLASSES)]
        item = make_item(
            s, settings, label=label, scores=_scores(rng, label, rng.uniform(0.38, 0.8)), waiting_for=wait,
            source=SOURCES[i % 3], model_version="v3" if i > 3 else "v2",
            filename=f"{['scan', 'mail', 'fax'][i % 3]}-2024-{1000 + i * 37}.{['pdf', 'tif', 'png'][i % 3]}",
            size=(850, 1100) if i == 0 else (240, 320), page_count=3 if i % 4 == 1 else 1,
        )  # fmt: skip
        if i == 0:
            first = item.prediction_id
        if i == 2:
            s.add(ReviewClaim(prediction_id=item.prediction_id, operator_id=operators[1], claimed_at=now,
                              expires_at=now + timedelta(minutes=5)))  # fmt: skip
            s.commit()
    return first
