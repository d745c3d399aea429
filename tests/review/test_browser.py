"""The review page in headless chromium (Playwright) against a real uvicorn server started by the test."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from review.settings import ReviewSettings
from schema.enums import DecisionOrigin, ReviewAction
from schema.tables import Review, ReviewClaim, RoutingDecision
from tests.support.browser import keys_ready, log_in, shoot
from tests.support.review import LiveServer
from tests.support.review_items import make_item, make_operator
from tests.support.screens import seed_busy_day

pytestmark = pytest.mark.browser


def test_operator_relabels_a_page_with_the_keyboard(
    chromium: Browser, live_server: LiveServer, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        oldest = make_item(s, rsettings, label="invoice", waiting_for=timedelta(hours=2))
        second = make_item(s, rsettings, label="letter", waiting_for=timedelta(hours=1))
        third = make_item(s, rsettings, label="form", waiting_for=timedelta(minutes=5))
    page = log_in(chromium, live_server, "alice")
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_have_attribute("data-id", str(oldest.prediction_id))

    keys_ready(page)
    page.keyboard.press("Enter")  # the oldest row is selected: open it
    expect(page).to_have_url(re.compile(rf"/items/{oldest.prediction_id}$"))
    expect(page.get_by_test_id("predicted")).to_have_text("invoice")
    keys_ready(page)
    page.keyboard.press("2")  # scores are invoice, letter, form: 2 picks letter
    expect(page.locator("#decide-btn")).to_contain_text("Relabel as letter")
    page.keyboard.press("Enter")

    expect(page.get_by_test_id("flash")).to_contain_text("Relabelled page 1 of scan-")
    expect(page.get_by_test_id("flash")).to_contain_text(".png as letter")
    expect(page).to_have_url(re.compile(rf"/items/{second.prediction_id}$"))
    expect(page.get_by_test_id("position")).to_have_text("1 of 2 open")
    with sessions() as s:
        review = s.scalar(select(Review).where(Review.prediction_id == oldest.prediction_id))
        assert review is not None
        assert (review.action, review.final_label) == (ReviewAction.relabel, "letter")
        assert review.duration_ms is not None and review.duration_ms > 0
        decision = s.scalar(
            select(RoutingDecision).where(
                RoutingDecision.prediction_id == oldest.prediction_id,
                RoutingDecision.origin == DecisionOrigin.operator,
            )
        )
    assert decision is not None and decision.label == "letter"
    routed = Path(decision.destination or "")
    assert routed.is_relative_to(rsettings.dir("outbox").resolve()) and routed.parent.parent.name == "letter"
    assert routed.read_bytes() == oldest.original.read_bytes()

    keys_ready(page)
    page.keyboard.press("j")  # on to the next page: the one left is let go
    expect(page).to_have_url(re.compile(rf"/items/{third.prediction_id}$"))
    with sessions() as s:
        assert s.get(ReviewClaim, second.prediction_id) is None
        assert s.get(ReviewClaim, third.prediction_id) is not None
    keys_ready(page)
    page.keyboard.press("k")
    expect(page).to_have_url(re.compile(rf"/items/{second.prediction_id}$"))
    page.context.close()


def test_second_operator_sees_the_page_taken(
    chromium: Browser, live_server: LiveServer, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        make_operator(s, "bob")
        item = make_item(s, rsettings)
    alice = log_in(chromium, live_server, "alice")
    bob = log_in(chromium, live_server, "bob")
    alice.goto(f"{live_server.url}/items/{item.prediction_id}")
    expect(alice.locator("#decide-btn")).to_be_enabled()

    bob.goto(f"{live_server.url}/queue")
    expect(bob.get_by_test_id("taken")).to_have_text("taken · alice")
    bob.goto(f"{live_server.url}/items/{item.prediction_id}")
    expect(bob.get_by_test_id("taken-banner")).to_contain_text("alice is reviewing this page")
    expect(bob.locator("#decide-btn")).to_be_disabled()
    keys_ready(bob)
    bob.keyboard.press("r")
    bob.keyboard.press("Enter")
    bob.wait_for_timeout(300)
    with sessions() as s:
        assert s.scalars(select(Review)).all() == []
    alice.context.close()
    bob.context.close()


def test_screenshots_of_queue_item_and_dashboard(
    chromium: Browser,
    live_server: LiveServer,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
    artifacts_dir: Path,
) -> None:
    with sessions() as s:
        first = seed_busy_day(s, rsettings, datetime.now(UTC))
    out = artifacts_dir / "review"
    out.mkdir(parents=True, exist_ok=True)
    page = log_in(chromium, live_server, "alice")
    expect(page.locator("table.queue tbody tr")).to_have_count(12)
    shoot(page, out / "queue.png", full_page=True)

    page.goto(f"{live_server.url}/items/{first}")
    expect(page.locator(".class-row")).to_have_count(5)
    shoot(page, out / "item.png", full_page=False)

    page.goto(f"{live_server.url}/dashboard")
    traffic = page.locator("div.plots").first.locator(".plot img")  # the quality section has its own
    expect(traffic).to_have_count(5)
    shoot(page, out / "dashboard.png", full_page=True)
    sizes = page.eval_on_selector_all(".plot img", "imgs => imgs.map(i => i.naturalWidth)")
    assert all(w > 300 for w in sizes), sizes
    page.context.close()
