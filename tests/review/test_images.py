"""Images are served only from the review directory: no path in the database can reach another file."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from review.files import review_file
from review.settings import ReviewSettings
from schema.tables import Page, RoutingDecision
from tests.support.review import login
from tests.support.review_items import make_item, make_operator
from worker.cam import save_image


def test_page_and_cam_images_are_served_to_a_logged_in_operator(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, rsettings)
    login(client, "alice")
    page = client.get(f"/items/{item.prediction_id}/page.png")
    cam = client.get(f"/items/{item.prediction_id}/cam.png")
    assert (page.status_code, page.headers["content-type"]) == (200, "image/png")
    assert page.content == item.image_path.read_bytes()
    assert cam.content == item.cam_path.read_bytes()


def test_image_paths_outside_the_review_dir_are_not_served(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG not for operators")
    review_dir = rsettings.dir("review")
    link = review_dir / "link.png"
    os.symlink(secret, link)
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, rsettings)
    login(client, "alice")
    for stored in [str(secret), f"{review_dir}/../secret.png", "../secret.png", str(link), "/etc/passwd"]:
        with sessions() as s:
            s.get(Page, item.page_id).image_path = stored  # type: ignore[union-attr]
            decision = s.query(RoutingDecision).filter_by(prediction_id=item.prediction_id).one()
            decision.cam_path = stored
            s.commit()
        for which in ("page", "cam"):
            response = client.get(f"/items/{item.prediction_id}/{which}.png")
            assert response.status_code == 404, (stored, which)
            assert b"not for operators" not in response.content


def test_review_file_accepts_relative_paths_inside_and_refuses_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "review"
    (root / "pages").mkdir(parents=True)
    inside = root / "pages" / "a.png"
    inside.write_bytes(b"png")
    (root / "notes.txt").write_text("text")
    assert review_file(root, "pages/a.png") == inside.resolve()
    assert review_file(root, str(inside)) == inside.resolve()
    for stored in [
        None,
        "",
        "pages/missing.png",
        "notes.txt",
        "pages",
        "pages/a.png\x00.txt",
        "../review/../x.png",
    ]:
        assert review_file(root, stored) is None, stored


def test_cam_votes_are_found_as_recorded_now_and_beside_an_older_overlay(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings, tmp_path: Path
) -> None:
    review_dir = rsettings.dir("review")
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, rsettings)
    login(client, "alice")
    beside = {"format": 1, "rows": 1, "cols": 1, "votes": {"invoice": [[0.9]]}}
    item.cam_path.with_suffix(".json").write_text(json.dumps(beside))  # recorded with a heat map PNG
    assert client.get(f"/items/{item.prediction_id}/cam.json").json() == beside
    recorded = review_dir / "cam" / "votes-cam.json"  # recorded now: the votes, no image
    votes = {"format": 1, "rows": 1, "cols": 1, "votes": {"invoice": [[0.7]]}}
    recorded.write_text(json.dumps(votes))
    outside = tmp_path / "outside-cam.json"
    outside.write_text(json.dumps(votes))
    for stored, status in [(str(recorded), 200), ("cam/votes-cam.json", 200), (str(outside), 404)]:
        with sessions() as s:
            s.query(RoutingDecision).filter_by(prediction_id=item.prediction_id).one().cam_path = stored
            s.commit()
        answer = client.get(f"/items/{item.prediction_id}/cam.json")
        assert answer.status_code == status, stored
        assert status == 404 or answer.json() == votes
        assert client.get(f"/items/{item.prediction_id}/cam.png").status_code == 404  # a JSON is no image
        page = client.get(f"/items/{item.prediction_id}")
        assert ('id="cam-canvas"' in page.text) == (status == 200)
        assert "/cam.png" not in page.text


def test_a_grey_page_image_is_served_grey_with_its_thumbnail_and_original(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, rsettings, size=(1131, 1600))
    grey = Image.open(item.image_path).convert("L")
    stored = save_image(grey, item.image_path.with_suffix(".jpg"))  # as the worker writes a grey page
    grey.resize((2480, 3508)).convert("1").save(item.original, format="TIFF", compression="group4")
    with sessions() as s:
        s.get(Page, item.page_id).image_path = str(stored)  # type: ignore[union-attr]
        s.commit()
    login(client, "alice")
    for route, size in [
        ("page.webp", (1131, 1600)),
        ("thumb.jpg", (181, 256)),
        ("original.jpg", (2480, 3508)),
    ]:
        answer = client.get(f"/items/{item.prediction_id}/{route}")
        assert (answer.status_code, answer.headers["content-type"]) == (200, "image/jpeg"), route
        with Image.open(io.BytesIO(answer.content)) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "L", size), route
