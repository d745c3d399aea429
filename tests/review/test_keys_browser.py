"""Keys that never decide by accident, and undo, in headless Chromium against a real uvicorn server.

The focused-control cases come first: Enter and Space on a focused control do that control's action;
the decision keys (Enter, R) act only when no control has the focus.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from review.app import create_app
from review.settings import ReviewSettings
from schema.enums import DecisionOrigin, ReviewAction
from schema.tables import OutputDocument, Review, RoutingDecision
from tests.support.browser import keys_ready, log_in, shoot
from tests.support.review import LiveServer
from tests.support.review_items import Item, make_item, make_operator

pytestmark = pytest.mark.browser
UNDO_SECONDS = 3.0


def _reviews(sessions: sessionmaker[Session]) -> list[tuple[int, ReviewAction, str | None]]:
    with sessions() as s:
        return [(r.prediction_id, r.action, r.final_label) for r in s.scalars(select(Review))]


def _open(page: Page, server: LiveServer, item: Item) -> None:
    page.goto(f"{server.url}/items/{item.prediction_id}")
    keys_ready(page)


def test_enter_on_a_focused_reject_button_rejects_and_never_confirms(
    chromium: Browser, live_server: LiveServer, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, rsettings, label="invoice")
    page = log_in(chromium, live_server, "alice")
    _open(page, live_server, item)
    page.focus("#reject-btn")
    expect(page.locator("html")).to_have_attribute("data-focus", "control")
    expect(page.get_by_test_id("keys-state")).to_contain_text("decision keys are off")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/queue$"))
    assert _reviews(sessions) == [(item.prediction_id, ReviewAction.reject, None)]
    page.context.close()


def test_enter_on_a_focused_next_link_moves_on_without_deciding(
    chromium: Browser, live_server: LiveServer, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        first = make_item(s, rsettings, label="invoice")
        second = make_item(s, rsettings, label="letter")
    page = log_in(chromium, live_server, "alice")
    _open(page, live_server, first)
    page.focus("#next-link")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/items/{second.prediction_id}$"))
    keys_ready(page)
    page.focus("#prev-link")
    page.keyboard.press("Space")  # a link takes no Space: nothing happens, and nothing is decided
    page.wait_for_timeout(300)
    expect(page).to_have_url(re.compile(rf"/items/{second.prediction_id}$"))
    assert _reviews(sessions) == []
    page.context.close()


def test_enter_after_clicking_a_view_button_decides_nothing_until_esc(
    chromium: Browser, live_server: LiveServer, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, rsettings, label="invoice")
    page = log_in(chromium, live_server, "alice")
    _open(page, live_server, item)
    page.click(".seg-btn[data-view=page]")
    for key in ("Enter", "Space", "r"):
        page.keyboard.press(key)
    page.wait_for_timeout(300)
    expect(page.locator("#viewer")).to_have_attribute("data-view", "page")
    assert _reviews(sessions) == []

    page.click("label.class-row[data-key='2']")  # a clicked class has the focus: Enter only chooses it
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    expect(page.locator("#decide-btn")).to_contain_text("Relabel as letter")
    assert _reviews(sessions) == []

    page.keyboard.press("Escape")  # the keys are the page's again
    expect(page.locator("html")).to_have_attribute("data-focus", "page")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/queue$"))
    assert _reviews(sessions) == [(item.prediction_id, ReviewAction.relabel, "letter")]
    page.context.close()


def test_queue_rows_take_the_focus_and_enter_opens_the_focused_one(
    chromium: Browser, live_server: LiveServer, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        make_item(s, rsettings, label="invoice")
        second = make_item(s, rsettings, label="letter")
    page = log_in(chromium, live_server, "alice")
    keys_ready(page)
    rows = page.locator("table.queue tbody tr")
    rows.nth(1).focus()
    expect(rows.nth(1)).to_be_focused()
    outline = rows.nth(1).evaluate("r => getComputedStyle(r).outlineStyle")
    assert outline != "none"  # the focus is visible
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/items/{second.prediction_id}$"))
    page.context.close()


@pytest.fixture
def undo_server(rsettings: ReviewSettings) -> Iterator[tuple[LiveServer, ReviewSettings]]:
    settings = rsettings.model_copy(update={"review_undo_seconds": UNDO_SECONDS})
    with LiveServer(create_app(settings)) as server:
        yield server, settings


def _operator_decision(sessions: sessionmaker[Session], prediction_id: int) -> RoutingDecision | None:
    with sessions() as s:
        return s.scalar(
            select(RoutingDecision).where(
                RoutingDecision.prediction_id == prediction_id,
                RoutingDecision.origin == DecisionOrigin.operator,
            )
        )


def test_r_is_undone_with_u_and_delivery_waits_for_the_undo_window(
    chromium: Browser,
    undo_server: tuple[LiveServer, ReviewSettings],
    sessions: sessionmaker[Session],
    artifacts_dir: Path,
) -> None:
    server, settings = undo_server
    with sessions() as s:
        make_operator(s, "alice")
        first = make_item(s, settings, label="invoice", filename="north-branch.png")
        second = make_item(s, settings, label="letter")
    page = log_in(chromium, server, "alice")
    _open(page, server, first)
    page.keyboard.press("r")
    expect(page).to_have_url(re.compile(rf"/items/{second.prediction_id}$"))
    flash = page.get_by_test_id("flash")
    expect(flash).to_contain_text("Rejected page 1 of north-branch.png as unreadable.")
    expect(page.get_by_test_id("undo")).to_be_visible()
    shoot(page, artifacts_dir / "review" / "undo.png", full_page=False)
    keys_ready(page)
    page.keyboard.press("u")
    expect(page).to_have_url(re.compile(rf"/items/{first.prediction_id}$"))
    expect(flash).to_contain_text("Undone: page 1 of north-branch.png is waiting for your answer again.")
    assert _reviews(sessions) == []
    assert _operator_decision(sessions, first.prediction_id) is None

    keys_ready(page)
    page.keyboard.press("Enter")  # confirm it this time: recorded now, delivered after the window
    expect(page).to_have_url(re.compile(rf"/items/{second.prediction_id}$"))
    decided = time.monotonic()
    assert _reviews(sessions) == [(first.prediction_id, ReviewAction.confirm, "invoice")]
    waiting = _operator_decision(sessions, first.prediction_id)
    assert waiting is not None and waiting.destination is None
    with sessions() as s:
        in_force = s.scalars(select(OutputDocument).where(OutputDocument.document_id == first.document_id))
        assert [o.origin for o in in_force if o.superseded_at is None] == [DecisionOrigin.model]

    page.wait_for_timeout(1000 * (UNDO_SECONDS + 0.5) - 1000 * (time.monotonic() - decided))
    expect(page.get_by_test_id("undo")).to_have_count(0)  # no longer offered once the window is over
    deadline = time.monotonic() + 10
    while (decision := _operator_decision(sessions, first.prediction_id)) is None or not decision.destination:
        assert time.monotonic() < deadline, "the answered document was not delivered after its undo window"
        page.reload()  # the pages deliver what is due, as the server's background sweep does
        time.sleep(0.5)
    assert time.monotonic() - decided >= UNDO_SECONDS
    assert Path(decision.destination).read_bytes() == first.original.read_bytes()
    page.context.close()


def test_undo_after_the_window_is_refused_and_the_answer_stands(
    undo_server: tuple[LiveServer, ReviewSettings], sessions: sessionmaker[Session], chromium: Browser
) -> None:
    server, settings = undo_server
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, settings, label="invoice")
    page = log_in(chromium, server, "alice")
    _open(page, server, item)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/queue$"))
    page.wait_for_timeout(1000 * UNDO_SECONDS + 200)
    token = page.locator("input[name=csrf_token]").first.input_value()
    answer = page.request.post(
        f"{server.url}/items/{item.prediction_id}/undo", form={"csrf_token": token}, max_redirects=0
    )
    assert answer.status == 409
    assert "can be undone for 3 s" in answer.text()
    assert _reviews(sessions) == [(item.prediction_id, ReviewAction.confirm, "invoice")]
    page.context.close()
