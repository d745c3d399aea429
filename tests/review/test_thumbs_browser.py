"""Small thumbnails in headless Chromium: a grid page of 24 scan-like pages loads small JPEGs (at most
256 px), not the viewer's WebP of each page; the bytes the browser received are measured against the
WebPs the grid loaded before, side by side in one run."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy.orm import Session, sessionmaker

from review.settings import ReviewSettings
from review.web_images import THUMB_SIDE
from tests.support.browser import ALL_IMAGES_LOADED, keys_ready, log_in, shoot, until
from tests.support.review import LiveServer
from tests.support.review_items import make_item, make_operator, scan_like

pytestmark = pytest.mark.browser
A4_REVIEW = (1131, 1600)  # DOCSORT_REVIEW_MAX_SIDE
GRID_PAGES = 24


def test_a_grid_page_of_24_loads_small_thumbnails(
    chromium: Browser,
    live_server: LiveServer,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
    artifacts_dir: Path,
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        items = [make_item(s, rsettings, label="invoice", size=A4_REVIEW) for _ in range(GRID_PAGES)]
    for n, item in enumerate(items):
        scan_like(item.image_path, A4_REVIEW, seed=n)
    page = log_in(chromium, live_server, "alice", height=4000)  # every tile in view: none left lazy
    page.goto(f"{live_server.url}/grid?class=invoice")
    keys_ready(page)
    expect(page.locator(".grid .tile-page")).to_have_count(GRID_PAGES)
    until(page, ALL_IMAGES_LOADED)
    loaded = page.evaluate(
        """() => performance.getEntriesByType('resource').filter(e => e.initiatorType === 'img')
            .map(e => ({url: e.name, bytes: e.encodedBodySize}))"""
    )
    thumbs = [e for e in loaded if e["url"].endswith("/thumb.jpg")]
    assert len(thumbs) == GRID_PAGES and not [e for e in loaded if e["url"].endswith("/page.webp")]
    sizes = page.eval_on_selector_all(".grid img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert all(max(w, h) <= THUMB_SIDE for w, h in sizes) and sizes[0] == [181, 256]
    after = sum(e["bytes"] for e in thumbs)

    before = 0  # what the grid loaded before: the viewer's WebP of each page
    for item in items:
        response = page.request.get(f"{live_server.url}/items/{item.prediction_id}/page.webp")
        assert response.ok
        before += len(response.body())
    print(
        f"\ngrid page of {GRID_PAGES} scan-like A4 pages {A4_REVIEW[0]}x{A4_REVIEW[1]}: "
        f"WebP pages {before} bytes, thumbnails {after} bytes, {before / after:.1f}x fewer"
    )
    assert after * 10 < before and after / GRID_PAGES < 20_000
    shoot(page, artifacts_dir / "review" / "grid-thumbnails.png", full_page=False)
    page.context.close()
