"""Grid review in headless Chromium: the queue's thumbnails for one predicted class, several chosen,
confirmed or relabelled at once; Enter on a focused page chooses it and never sends."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from review.app import create_app
from review.settings import ReviewSettings
from schema.enums import ReviewAction
from schema.tables import Review
from tests.support.browser import keys_ready, log_in, shoot
from tests.support.review import LiveServer
from tests.support.review_items import make_item, make_operator

pytestmark = pytest.mark.browser


def test_bulk_confirm_and_relabel_from_the_grid(
    chromium: Browser,
    live_server: LiveServer,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
    artifacts_dir: Path,
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        invoices = [make_item(s, rsettings, label="invoice") for _ in range(5)]
        letter = make_item(s, rsettings, label="letter")
    page = log_in(chromium, live_server, "alice")
    page.goto(f"{live_server.url}/grid?class=invoice")
    keys_ready(page)
    tiles = page.locator(".grid .tile-page")
    expect(tiles).to_have_count(5)  # the letter is not among them

    boxes = page.locator(".grid input[name=ids]")
    boxes.nth(0).focus()
    page.keyboard.press("Enter")  # chooses the focused page, sends nothing
    page.keyboard.press("Tab")  # to the first page's "open" link
    page.keyboard.press("Tab")  # to the second page
    expect(boxes.nth(1)).to_be_focused()
    page.keyboard.press("Space")
    page.click(".tile-page:nth-child(3) .pick img")
    expect(page.locator("#chosen-count")).to_have_text("3")
    with sessions() as s:
        assert s.scalars(select(Review)).all() == []
    shoot(page, artifacts_dir / "review" / "grid.png", full_page=False)

    page.click("#bulk-confirm")
    expect(page.get_by_test_id("grid-flash")).to_have_text("Confirmed 3 pages.")
    expect(tiles).to_have_count(2)
    keys_ready(page)
    page.keyboard.press("a")
    expect(page.locator("#chosen-count")).to_have_text("2")
    page.select_option("#relabel-to", "form")
    page.click("#bulk-relabel")
    expect(page.get_by_test_id("grid-flash")).to_have_text("Relabelled as form: 2 pages.")
    with sessions() as s:
        answers = {r.prediction_id: (r.action, r.final_label) for r in s.scalars(select(Review))}
    assert [answers[i.prediction_id] for i in invoices] == [(ReviewAction.confirm, "invoice")] * 3 + [
        (ReviewAction.relabel, "form")
    ] * 2
    assert letter.prediction_id not in answers
    expect(page.get_by_test_id("grid-empty")).to_be_visible()
    page.context.close()


def test_a_bulk_answer_is_undone_with_u_inside_the_window(
    chromium: Browser, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    settings = rsettings.model_copy(update={"review_undo_seconds": 5})
    with sessions() as s:
        make_operator(s, "alice")
        for _ in range(3):
            make_item(s, settings, label="invoice")
    with LiveServer(create_app(settings)) as server:
        page = log_in(chromium, server, "alice")
        page.goto(f"{server.url}/grid?class=invoice")
        keys_ready(page)
        page.locator(".grid input[name=ids]").nth(0).check()
        page.locator(".grid input[name=ids]").nth(2).check()
        page.click("#bulk-confirm")
        expect(page.get_by_test_id("grid-flash")).to_have_text("Confirmed 2 pages.")
        with sessions() as s:
            assert len(s.scalars(select(Review)).all()) == 2
        keys_ready(page)
        page.keyboard.press("u")
        expect(page.get_by_test_id("grid-flash")).to_have_text("Undone: 2 pages waiting again.")
        expect(page.locator(".grid .tile-page")).to_have_count(3)
        with sessions() as s:
            assert s.scalars(select(Review)).all() == []
        page.context.close()
