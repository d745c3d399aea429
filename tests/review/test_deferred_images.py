"""Review images the worker leaves to be made here (a JPEG or PDF page decoded small for the model): made
from the received file at review size on first use, at the path the worker recorded, as the worker would
have made them; made ahead of the operators by the review server's sweep; a received file that is gone
answers an error naming the file and the reason."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from review.originals import make_missing_images, review_image
from review.settings import ReviewSettings
from schema.tables import Page
from tests.support.review import login
from tests.support.review_items import Item, make_item, make_operator, page_png


def _deferred(sessions: sessionmaker[Session], rsettings: ReviewSettings, **kw: object) -> tuple[Item, Path]:
    """A waiting page whose received file is an A4 scan and whose review image is recorded, not made."""
    with sessions() as s:
        item = make_item(s, rsettings, **kw)  # type: ignore[arg-type]
        target = rsettings.dir("review") / item.sha256[:2] / f"{item.sha256[:16]}-p1.jpg"
        page = s.get(Page, item.page_id)
        assert page is not None
        page.image_path = str(target)
        s.commit()
    page_png(item.original, "invoice", 240, (2480, 3508))
    return item, target


def _viewed(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> tuple[Item, Path]:
    """A deferred page, and an operator logged in to see it."""
    with sessions() as s:
        make_operator(s, "alice")
    found = _deferred(sessions, rsettings)
    login(client, "alice")
    return found


def test_a_deferred_review_image_is_made_from_the_received_file_on_first_view(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    item, target = _viewed(client, sessions, rsettings)
    for route in ("page.webp", "page.png", "thumb.jpg"):
        response = client.get(f"/items/{item.prediction_id}/{route}")
        assert response.status_code == 200, (route, response.text)
    with Image.open(target) as made:  # at the path recorded, at the review size
        assert (made.format, made.size, made.mode) == ("JPEG", (1131, 1600), "RGB")
    response = client.get(f"/items/{item.prediction_id}/page.webp")
    with Image.open(io.BytesIO(response.content)) as served:
        assert served.size == (1131, 1600)


def test_a_deferred_image_whose_file_is_gone_answers_the_file_and_the_reason(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    item, target = _viewed(client, sessions, rsettings)
    item.original.unlink()
    response = client.get(f"/items/{item.prediction_id}/page.webp")
    assert response.status_code == 404
    assert str(item.original) in response.json()["detail"] and "file not found" in response.json()["detail"]
    assert not target.exists()


def test_the_sweep_makes_the_waiting_pages_images_ahead_of_the_operators(
    sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    _, first_target = _deferred(sessions, rsettings)
    second, second_target = _deferred(sessions, rsettings)
    gone, gone_target = _deferred(sessions, rsettings)
    gone.original.unlink()  # skipped: its item page says why
    with sessions() as s:
        assert make_missing_images(s, rsettings, most=8) == 2
        assert make_missing_images(s, rsettings, most=8) == 0  # made once
    assert first_target.exists() and second_target.exists() and not gone_target.exists()
    outside = rsettings.dir("review").parent / "elsewhere.jpg"  # a recorded path outside: never written
    assert review_image(rsettings, str(outside), str(second.original), 1, "x.png") is None
    assert not outside.exists()
