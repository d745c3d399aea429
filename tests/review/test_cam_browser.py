"""The CAM as the browser draws it (cell votes on a fixed scale, legend, opacity, runner-up, hidden
where it points nowhere) and the page sent as WebP of at most ~300 KB for an A4 page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from review.settings import ReviewSettings
from schema.tables import RoutingDecision
from tests.support.browser import keys_ready, log_in, shoot
from tests.support.review import LiveServer
from tests.support.review_items import Item, make_item, make_operator, scan_like
from worker.explain import cam_cells_path

pytestmark = pytest.mark.browser
A4_REVIEW = (1131, 1600)  # DOCSORT_REVIEW_MAX_SIDE


def _cells(item: Item, votes: dict[str, np.ndarray], sessions: sessionmaker[Session] | None = None) -> None:
    """Save an item's cell votes beside its overlay PNG (as decisions recorded before); with ``sessions``,
    as the worker saves them now: the JSON is the decision's ``cam_path``, and there is no PNG."""
    rows, cols = next(iter(votes.values())).shape
    data = {"format": 1, "scale": "cell vote", "rows": rows, "cols": cols,
            "votes": {k: np.round(v, 3).tolist() for k, v in votes.items()}}  # fmt: skip
    if sessions is None:
        cam_cells_path(item.cam_path).write_text(json.dumps(data))
        return
    recorded = item.cam_path.with_name(f"{item.cam_path.stem}-cam.json")
    recorded.write_text(json.dumps(data))
    item.cam_path.unlink()
    with sessions() as s:
        s.execute(
            update(RoutingDecision)
            .where(RoutingDecision.prediction_id == item.prediction_id)
            .values(cam_path=str(recorded))
        )
        s.commit()


def test_cam_legend_opacity_runner_up_and_hidden_when_it_points_nowhere(
    chromium: Browser,
    live_server: LiveServer,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
    artifacts_dir: Path,
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        pointed = make_item(s, rsettings, label="invoice", size=A4_REVIEW)
        flat = make_item(s, rsettings, label="invoice")
    scan_like(pointed.image_path, A4_REVIEW)
    invoice = np.full((8, 8), 0.2)
    invoice[1:3, 4:7] = 0.93  # the letterhead
    letter = np.full((8, 8), 0.3)
    letter[5:7, 1:3] = 0.7
    _cells(pointed, {"invoice": invoice, "letter": letter, "form": 1 - invoice - letter}, sessions)
    _cells(
        flat,
        {"invoice": np.full((8, 8), 0.36), "letter": np.full((8, 8), 0.34), "form": np.full((8, 8), 0.3)},
    )

    page = log_in(chromium, live_server, "alice")
    answer = page.request.get(f"{live_server.url}/items/{pointed.prediction_id}/page.webp")
    assert answer.headers["content-type"] == "image/webp"
    assert len(answer.body()) <= 300_000, len(answer.body())
    assert pointed.image_path.stat().st_size > 3 * len(answer.body())  # the PNG it replaces

    page.goto(f"{live_server.url}/items/{pointed.prediction_id}")
    keys_ready(page)
    canvas = page.locator("#cam-canvas")
    expect(canvas).to_have_attribute("data-state", "shown")
    expect(canvas).to_have_attribute("data-peak", "0.930")  # the cell's own value: no stretch to 1
    expect(page.get_by_test_id("cam-class")).to_have_text("invoice")
    expect(page.locator(".cam-legend")).to_be_visible()
    page.locator("#cam-opacity").fill("25")
    assert canvas.evaluate("c => getComputedStyle(c).opacity") == "0.25"
    page.locator("#cam-opacity").fill("70")
    shoot(page, artifacts_dir / "review" / "cam.png", full_page=False)
    page.keyboard.press("Escape")
    page.keyboard.press("x")  # the runner-up class's map (scores: invoice 48%, letter 41%, form 11%)
    expect(page.get_by_test_id("cam-class")).to_have_text("letter")
    expect(canvas).to_have_attribute("data-peak", "0.700")
    expect(page.get_by_test_id("cam-runner-up")).to_have_attribute("aria-pressed", "true")

    page.goto(f"{live_server.url}/items/{flat.prediction_id}")
    keys_ready(page)
    expect(canvas).to_have_attribute("data-state", "hidden")
    expect(canvas).to_be_hidden()
    expect(page.get_by_test_id("cam-note")).to_contain_text("points nowhere on this page")
    page.context.close()
