"""A multi-page document under review in headless Chromium: its page strip, split points moved with
the keyboard, a class per part, delivered once as the operator's documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from review.settings import ReviewSettings
from schema.enums import DecisionOrigin, DocumentAction, ReviewAction
from schema.tables import DocumentReview, OutputDocument, Review
from tests.support.browser import keys_ready, log_in, shoot
from tests.support.review import LiveServer
from tests.support.review_documents import make_document
from tests.support.review_items import make_operator

pytestmark = pytest.mark.browser


def test_a_document_is_split_with_the_keyboard_and_delivered_as_two(
    chromium: Browser,
    live_server: LiveServer,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
    artifacts_dir: Path,
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        doc = make_document(s, rsettings, ["invoice", "invoice", "letter", "letter"], filename="stack.tif")
    page = log_in(chromium, live_server, "alice")
    page.goto(f"{live_server.url}/items/{doc.prediction_ids[0]}")
    keys_ready(page)
    expect(page.locator(".strip-page")).to_have_count(4)
    expect(page.get_by_test_id("parts-summary")).to_have_text("one document")

    page.keyboard.press("PageDown")
    expect(page.locator("#viewer")).to_have_attribute("data-page", "2")
    expect(page.locator("#page-of")).to_have_text("page 2 of 4")
    expect(page.get_by_test_id("page-image")).to_have_attribute(
        "src", f"/items/{doc.prediction_ids[1]}/page.webp"
    )
    page.keyboard.press("s")  # a split before page 2 ...
    expect(page.get_by_test_id("parts-summary")).to_have_text("2 documents")
    page.keyboard.press("]")  # ... moved to before page 3
    expect(page.locator(".cut-btn[data-page='3']")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".cut-btn[data-page='2']")).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("PageDown")  # page 3, in the second part: class 2 (letter) for that part
    page.keyboard.press("2")
    expect(page.locator(".strip-page[data-page='3'] .part-chip")).to_have_text("letter")
    expect(page.locator(".strip-page[data-page='1'] .part-chip")).to_have_text("invoice")
    expect(page.locator("#decide-btn")).to_contain_text("Deliver 2 documents")
    shoot(page, artifacts_dir / "review" / "document.png", full_page=False)

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/queue$"))
    expect(page.get_by_test_id("queue-empty")).to_be_visible()  # all four pages left the queue
    with sessions() as s:
        answer = s.scalar(select(DocumentReview))
        assert answer is not None and answer.action == DocumentAction.split_up
        assert answer.parts == [{"pages": [1, 2], "label": "invoice"}, {"pages": [3, 4], "label": "letter"}]
        reviews = {r.prediction_id: (r.action, r.final_label) for r in s.scalars(select(Review))}
        assert [reviews[i] for i in doc.prediction_ids] == [(ReviewAction.confirm, "invoice")] * 2 + [
            (ReviewAction.confirm, "letter")
        ] * 2
        made = s.scalars(
            select(OutputDocument).where(
                OutputDocument.document_id == doc.document_id, OutputDocument.superseded_at.is_(None)
            )
        ).all()
    assert [(o.origin, o.pages, o.label) for o in made] == [
        (DecisionOrigin.operator, [1, 2], "invoice"),
        (DecisionOrigin.operator, [3, 4], "letter"),
    ]
    for output in made:
        assert output.delivered_at is not None and output.destination
        with Image.open(output.destination) as delivered:
            assert delivered.n_frames == 2  # each part delivered whole from the received file
    page.context.close()


def test_rejecting_a_document_rejects_every_page_once(
    chromium: Browser, live_server: LiveServer, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        doc = make_document(s, rsettings, ["form", "form", "form"])
    page = log_in(chromium, live_server, "alice")
    page.goto(f"{live_server.url}/items/{doc.prediction_ids[1]}")
    keys_ready(page)
    page.keyboard.press("r")
    expect(page).to_have_url(re.compile(r"/queue$"))
    with sessions() as s:
        answer = s.scalar(select(DocumentReview))
        assert answer is not None and answer.action == DocumentAction.reject
        assert answer.parts == [{"pages": [1, 2, 3], "label": None}]
        assert sorted(r.action for r in s.scalars(select(Review))) == [ReviewAction.reject] * 3
    page.context.close()
