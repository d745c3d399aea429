"""The queue by document in headless Chromium: a document of four pages under review is one row with
its page count; it opens on its first page with the strip; a colleague sees the row as taken, and J
on the item pages skips it; answered whole, the row leaves the queue."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy.orm import Session, sessionmaker

from review.claims import claim
from review.queue import QueueFilters, list_documents, open_ids
from review.settings import ReviewSettings
from tests.support.browser import keys_ready, log_in, shoot
from tests.support.review import LiveServer
from tests.support.review_documents import make_document
from tests.support.review_items import make_item, make_operator

pytestmark = pytest.mark.browser


def test_a_document_is_one_row_with_its_page_count_and_claims_hold(
    chromium: Browser,
    live_server: LiveServer,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
    artifacts_dir: Path,
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        make_operator(s, "bob")
        older = make_item(s, rsettings, waiting_for=timedelta(hours=2))
        doc = make_document(s, rsettings, ["invoice"] * 4, waiting_for=timedelta(hours=1))
        newer = make_item(s, rsettings, waiting_for=timedelta(minutes=5))
    alice = log_in(chromium, live_server, "alice")
    rows = alice.locator("table.queue tbody tr")
    expect(rows).to_have_count(3)  # not 6: the document's four pages are one row
    ids = [rows.nth(i).get_attribute("data-id") for i in range(3)]
    assert ids == [str(older.prediction_id), str(doc.prediction_ids[0]), str(newer.prediction_id)]
    expect(rows.nth(1).get_by_test_id("doc-pages")).to_have_text("4 pages")
    expect(alice.get_by_test_id("pending-total")).to_have_text("6")  # pages waiting
    shoot(alice, artifacts_dir / "review" / "queue-documents.png", full_page=False)

    keys_ready(alice)
    alice.keyboard.press("j")
    alice.keyboard.press("Enter")  # opens the document on its first page, with the strip
    expect(alice).to_have_url(re.compile(rf"/items/{doc.prediction_ids[0]}$"))
    expect(alice.locator(".strip-page")).to_have_count(4)

    bob = log_in(chromium, live_server, "bob")  # alice holds the document now
    bob_rows = bob.locator("table.queue tbody tr")
    expect(bob_rows).to_have_count(3)
    expect(bob_rows.nth(1).get_by_test_id("taken")).to_have_text("taken · alice")
    bob.goto(f"{live_server.url}/items/{older.prediction_id}")
    keys_ready(bob)
    bob.keyboard.press("j")  # skips alice's document
    expect(bob).to_have_url(re.compile(rf"/items/{newer.prediction_id}$"))
    bob.context.close()

    keys_ready(alice)
    alice.keyboard.press("Enter")  # the document answered whole: delivered, it leaves the queue
    expect(alice).not_to_have_url(re.compile(rf"/items/{doc.prediction_ids[0]}$"))
    alice.goto(f"{live_server.url}/queue")
    expect(rows).to_have_count(2)
    assert str(doc.prediction_ids[0]) not in [rows.nth(i).get_attribute("data-id") for i in range(2)]
    alice.context.close()


def test_a_page_of_a_document_held_by_another_keeps_the_document_out_of_next(
    sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        alice, bob = make_operator(s, "alice"), make_operator(s, "bob")
        doc = make_document(s, rsettings, ["invoice", "letter", "letter"], waiting_for=timedelta(hours=1))
        alone = make_item(s, rsettings, waiting_for=timedelta(minutes=5))
        now = datetime.now(UTC)
        assert open_ids(s, QueueFilters(), alice.id, now) == [doc.prediction_ids[0], alone.prediction_id]
        claim(s, doc.prediction_ids[1], bob.id, now, timedelta(minutes=5))  # bob holds page 2
        assert open_ids(s, QueueFilters(), alice.id, now) == [alone.prediction_id]
        assert open_ids(s, QueueFilters(), bob.id, now) == [doc.prediction_ids[0], alone.prediction_id]
        rows, count = list_documents(s, QueueFilters(), now, alice.id)
        assert count == 2 and (rows[0].doc_pages, rows[0].waiting_pages, rows[0].claimed_by) == (3, 3, "bob")
        letters, _ = list_documents(s, QueueFilters(label="letter"), now, alice.id)
        assert [(r.prediction_id, r.waiting_pages) for r in letters] == [(doc.prediction_ids[1], 2)]
