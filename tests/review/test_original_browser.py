"""The original on demand in headless Chromium: O fetches the received file's page at its scanned
resolution and shows it at 1:1; O again goes back to the preview; a missing file leaves the preview
in place with a line naming the file and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from review.settings import ReviewSettings
from tests.support.browser import keys_ready, log_in, shoot, until
from tests.support.review import LiveServer
from tests.support.review_documents import make_document
from tests.support.review_items import make_item, make_operator, page_png

pytestmark = pytest.mark.browser
PREVIEW = (1131, 1600)  # the stored review image (DOCSORT_REVIEW_MAX_SIDE 1600)
SCAN = (2480, 3508)  # the received file: A4 at 300 dpi


def _natural(page: Page) -> tuple[int, int]:
    size = page.eval_on_selector("[data-testid=page-image]", "i => [i.naturalWidth, i.naturalHeight]")
    return int(size[0]), int(size[1])


def test_o_shows_the_original_at_its_scanned_resolution_and_back(
    chromium: Browser,
    live_server: LiveServer,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
    artifacts_dir: Path,
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, rsettings, size=PREVIEW)
    page_png(item.original, "invoice", 240, SCAN)
    page = log_in(chromium, live_server, "alice")
    page.goto(f"{live_server.url}/items/{item.prediction_id}")
    keys_ready(page)
    until(page, "document.querySelector('[data-testid=page-image]').naturalWidth > 0")
    assert _natural(page) == PREVIEW
    page.keyboard.press("v")  # the page alone

    with page.expect_response(lambda r: r.url.endswith(f"/items/{item.prediction_id}/original.jpg")) as got:
        page.keyboard.press("o")
    assert got.value.status == 200 and got.value.header_value("content-type") == "image/jpeg"
    viewer = page.locator("#viewer")
    expect(viewer).to_have_attribute("data-source", "original")
    assert _natural(page) == SCAN  # the browser decoded the scan itself, not the preview
    expect(viewer).to_have_attribute("data-scale", "1.00")  # shown 1:1
    width = page.eval_on_selector("[data-testid=page-image]", "i => i.getBoundingClientRect().width")
    assert abs(width - SCAN[0]) <= 1
    expect(page.get_by_test_id("original-note")).to_contain_text("2480 × 3508 px")
    expect(page.get_by_test_id("original")).to_have_attribute("aria-pressed", "true")
    shoot(page, artifacts_dir / "review" / "original.png", full_page=False)

    page.keyboard.press("o")  # back to the preview
    expect(viewer).to_have_attribute("data-source", "preview")
    until(page, "document.querySelector('[data-testid=page-image]').naturalWidth === 1131")
    expect(page.get_by_test_id("original-note")).to_be_hidden()
    page.context.close()


def test_a_missing_original_keeps_the_preview_and_names_the_file(
    chromium: Browser,
    live_server: LiveServer,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
    artifacts_dir: Path,
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, rsettings, size=PREVIEW, filename="april.png")
    item.original.unlink()
    page = log_in(chromium, live_server, "alice")
    page.goto(f"{live_server.url}/items/{item.prediction_id}")
    keys_ready(page)
    until(page, "document.querySelector('[data-testid=page-image]').naturalWidth > 0")
    page.click("[data-testid=original]")  # the button does what O does
    note = page.get_by_test_id("original-note")
    expect(note).to_have_text(
        f"The original of page 1 of april.png cannot be shown: {item.original}: file not found"
    )
    expect(page.locator("#viewer")).to_have_attribute("data-source", "preview")
    assert _natural(page) == PREVIEW
    src = page.eval_on_selector("[data-testid=page-image]", "i => i.getAttribute('src')")
    assert src == f"/items/{item.prediction_id}/page.webp"
    shoot(page, artifacts_dir / "review" / "original-missing.png", full_page=False)
    page.context.close()


def test_o_on_a_page_of_a_document_shows_that_tiff_frame(
    chromium: Browser, live_server: LiveServer, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        doc = make_document(s, rsettings, ["invoice", "invoice", "letter"])
    frames = [Image.new("RGB", size, "white") for size in [(700, 990), (1654, 2339), (500, 700)]]
    frames[0].save(doc.original, save_all=True, append_images=frames[1:])  # the received scan's frames
    page = log_in(chromium, live_server, "alice")
    page.goto(f"{live_server.url}/items/{doc.prediction_ids[0]}")
    keys_ready(page)
    thumbs = page.locator(".strip-page .thumb img")
    expect(thumbs).to_have_count(3)
    assert thumbs.nth(1).get_attribute("src") == f"/items/{doc.prediction_ids[1]}/thumb.jpg"

    page.keyboard.press("PageDown")
    expect(page.locator("#viewer")).to_have_attribute("data-item", str(doc.prediction_ids[1]))
    page.keyboard.press("o")
    expect(page.locator("#viewer")).to_have_attribute("data-source", "original")
    assert _natural(page) == (1654, 2339)  # frame 2 of the TIFF, as scanned

    page.keyboard.press("PageDown")  # another page: its preview again
    expect(page.locator("#viewer")).to_have_attribute("data-source", "preview")
    expect(page.get_by_test_id("page-image")).to_have_attribute(
        "src", f"/items/{doc.prediction_ids[2]}/page.webp"
    )
    expect(page.get_by_test_id("original-note")).to_be_hidden()
    page.context.close()
