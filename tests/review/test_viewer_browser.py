"""The zoomable viewer in headless Chromium: fit width or height, zoom and pan by keys and mouse, full
resolution, the chosen view remembered on the next item."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from review.settings import ReviewSettings
from tests.support.browser import keys_ready, log_in, shoot
from tests.support.review import LiveServer
from tests.support.review_items import make_item, make_operator

pytestmark = pytest.mark.browser
A4_150DPI = (1240, 1754)


def _sizes(page: Page) -> dict[str, float]:
    return page.eval_on_selector(
        ".fig-page .zoom-box",
        """box => { const img = box.querySelector('img'); return {
            boxW: box.clientWidth, boxH: box.clientHeight, w: img.getBoundingClientRect().width,
            h: img.getBoundingClientRect().height, natural: img.naturalWidth,
            left: box.scrollLeft, top: box.scrollTop }; }""",
    )


def test_fit_zoom_pan_full_resolution_and_the_view_remembered(
    chromium: Browser,
    live_server: LiveServer,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
    artifacts_dir: Path,
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        first = make_item(s, rsettings, size=A4_150DPI)
        second = make_item(s, rsettings, size=A4_150DPI)
    page = log_in(chromium, live_server, "alice")
    page.goto(f"{live_server.url}/items/{first.prediction_id}")
    keys_ready(page)
    page.wait_for_function("document.querySelector('[data-testid=page-image]').naturalWidth > 0")
    page.keyboard.press("v")  # the page alone
    expect(page.locator("#viewer")).to_have_attribute("data-view", "page")

    page.keyboard.press("w")
    expect(page.locator("#viewer")).to_have_attribute("data-zoom", "width")
    size = _sizes(page)
    assert abs(size["w"] - size["boxW"]) <= 1 and size["h"] > size["boxH"]  # A4 at full width: taller
    page.keyboard.press("h")
    expect(page.locator("#viewer")).to_have_attribute("data-zoom", "height")
    size = _sizes(page)
    assert abs(size["h"] - size["boxH"]) <= 1 and size["w"] < size["boxW"]

    page.keyboard.press("f")  # full resolution: one image pixel per screen pixel
    expect(page.locator("#viewer")).to_have_attribute("data-scale", "1.00")
    assert abs(_sizes(page)["w"] - A4_150DPI[0]) <= 1
    page.keyboard.press("+")
    expect(page.locator("#viewer")).to_have_attribute("data-scale", "1.25")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    size = _sizes(page)
    assert size["left"] >= 60 and size["top"] >= 60

    box = page.locator(".fig-page .zoom-box").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 150, y - 200, steps=5)
    page.mouse.up()
    dragged = _sizes(page)
    assert dragged["left"] >= size["left"] + 140 and dragged["top"] >= size["top"] + 190
    page.keyboard.down("Control")
    page.mouse.wheel(0, 100)  # Ctrl+wheel down: zoom out
    page.keyboard.up("Control")
    expect(page.locator("#viewer")).to_have_attribute("data-scale", "1.00")
    page.keyboard.press("+")
    page.keyboard.press("+")
    expect(page.locator("#viewer")).to_have_attribute("data-scale", "1.56")
    shoot(page, artifacts_dir / "review" / "viewer-zoomed.png", full_page=False)

    page.keyboard.press("j")  # the next item opens with the same view and zoom
    expect(page).to_have_url(re.compile(rf"/items/{second.prediction_id}$"))
    keys_ready(page)
    expect(page.locator("#viewer")).to_have_attribute("data-view", "page")
    expect(page.locator("#viewer")).to_have_attribute("data-zoom", "scale")
    expect(page.locator("#viewer")).to_have_attribute("data-scale", "1.56")
    page.context.close()
