"""Headless Chromium for the review pages: a logged-in page, waiting for the keys, screenshots."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.support.review import LiveServer
from tests.support.review_items import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ALL_IMAGES_LOADED = "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
expect.set_options(timeout=15_000)  # a busy CI machine


def keys_ready(page: Page) -> None:
    """Wait until the page's keyboard shortcuts are attached (review.js runs after the HTML)."""
    expect(page.locator("html[data-keys=ready]")).to_have_count(1)


def log_in(browser: Browser, server: LiveServer, name: str, *, width: int = 1440, height: int = 900) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{server.url}/queue")
    expect(page).to_have_url(re.compile(r"/login\?next=/queue$"))
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server.url}/queue")
    return page


def until(page: Page, expression: str, timeout_s: float = 15.0) -> None:
    """Wait until ``expression`` is true in the page, polled from here: Playwright's own polling
    (``wait_for_function``) evaluates a string inside the page, which the pages' CSP forbids."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {expression}"
        page.wait_for_timeout(50)


def shoot(page: Page, path: Path, *, full_page: bool) -> None:
    """A screenshot once every image has loaded (kept by CI from test-artifacts/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    until(page, ALL_IMAGES_LOADED)
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 20_000
