"""Dashboard numbers (per hour, review rate, classes, queue age, versions) and the plots drawn from them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from review.plots import PLOTS
from review.settings import ReviewSettings
from review.stats import dashboard
from schema.enums import ReviewAction
from schema.tables import ModelVersion, Review
from tests.support.review import login, sessions_for
from tests.support.review_items import make_auto, make_item, make_operator


def _history(s: Session, settings: ReviewSettings, now: datetime) -> None:
    alice = make_operator(s, "alice")
    for hours_ago, label in [(0, "invoice"), (0, "invoice"), (2, "letter"), (30, "letter")]:
        make_auto(s, label=label, when=now - timedelta(hours=hours_ago, minutes=1))
    waiting = make_item(s, settings, label="invoice", waiting_for=timedelta(minutes=5))
    make_item(s, settings, label="form", waiting_for=timedelta(hours=2), model_version="v2")
    done = make_item(s, settings, label="letter", waiting_for=timedelta(hours=2, minutes=30))
    s.add(
        Review(
            prediction_id=done.prediction_id,
            operator_id=alice.id,
            action=ReviewAction.relabel,
            final_label="form",
            decided_at=now - timedelta(minutes=30),
            duration_ms=12_000,
        )
    )
    s.add(ModelVersion(name="docsort", version="v2", sha256="0" * 64, path="/m", manifest={}, active=True))
    s.commit()
    assert waiting.prediction_id


def test_dashboard_counts_pages_reviews_classes_and_queue_age(any_rsettings: ReviewSettings) -> None:
    now = datetime.now(UTC)
    with sessions_for(any_rsettings)() as s:
        _history(s, any_rsettings, now)
        board = dashboard(s, now, hours=24)
    assert len(board.hours) == 24
    assert (sum(h.auto for h in board.hours), sum(h.review for h in board.hours)) == (3, 3)
    slot = (now - timedelta(hours=2, minutes=1)).replace(minute=0, second=0, microsecond=0)
    assert next(h for h in board.hours if h.start == slot).auto >= 1  # the letter routed two hours ago
    assert board.pages_in_period == 3 + 3  # the auto page 30 hours ago is outside
    assert sum(h.reviewed for h in board.hours) == 1
    assert board.review_rate_in_period == 3 / 6
    assert board.auto_by_class == {"invoice": 2, "letter": 2}
    assert board.reviewed_by_class == {"form": 1}
    assert board.pending_by_class == {"invoice": 1, "form": 1}
    assert dict(board.queue_ages)["< 15 min"] == 1 and dict(board.queue_ages)["1–4 h"] == 1
    assert board.oldest is not None and timedelta(hours=1, minutes=59) < now - board.oldest < timedelta(
        hours=2, minutes=1
    )
    versions = {v.model: v for v in board.versions}
    assert versions["docsort v1"].corrected == 1 and versions["docsort v1"].reviewed == 1
    assert versions["docsort v2"].active and versions["docsort v2"].sent_to_review == 1
    assert (board.reviews_24h, board.median_review_s) == (1, 12.0)


def test_every_plot_is_valid_svg_even_without_data(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
    login(client, "alice")
    for name in PLOTS:
        response = client.get(f"/dashboard/plots/{name}.svg")
        assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
        assert ET.fromstring(response.content).tag.endswith("svg")
    assert client.get("/dashboard/plots/nothing.svg").status_code == 404
    assert "queue is empty" in client.get("/dashboard/plots/queue-age.svg").text


def test_dashboard_page_shows_the_numbers_and_plots(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        _history(s, rsettings, datetime.now(UTC))
    login(client, "alice")
    html = client.get("/dashboard").text
    assert 'data-testid="pending">2<' in html and 'data-testid="pages-period">6<' in html
    for name in PLOTS:
        assert f"/dashboard/plots/{name}.svg" in html
    svg = client.get("/dashboard/plots/classes.svg").text
    assert "invoice" in svg and "letter" in svg and "form" in svg
