"""File names and labels with bidi overrides, zero-width and control characters are shown as what they
are ([U+202E]), never acted on by the browser; a label with them still works as a form value."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from review.settings import ReviewSettings
from review.web.deps import visible_text
from schema.tables import Review
from tests.support.review import login
from tests.support.review_items import make_item, make_operator

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "invoice\u202efdp.exe" reads "invoiceexe.pdf"
SPOOFED = f"invoice{RLO}fdp.exe"
HIDDEN = ["\u202e", "\u202d", "\u2066", "\u2069", "\u200f", "\u200b", "\u2028", "\x1b", "\x07"]


def test_visible_text_writes_each_hidden_character_as_its_code_point() -> None:
    assert visible_text(SPOOFED) == "invoice[U+202E]fdp.exe"
    assert visible_text("a\x1b[31mred\u2028b") == "a[U+001B][31mred[U+2028]b"
    assert visible_text("Zoë – naïve 日本 scan.pdf") == "Zoë – naïve 日本 scan.pdf"
    assert visible_text("two\nlines\tand a tab") == "two\nlines\tand a tab"


def test_queue_and_item_pages_show_hidden_characters_of_names_and_labels(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    label = f"invoice{RLO}"
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(
            s,
            rsettings,
            label=label,
            scores={label: 0.5, "letter": 0.4, "form": 0.1},
            filename="".join(HIDDEN) + SPOOFED,
        )
    token = login(client, "alice")
    queue = client.get("/queue").text
    page = client.get(f"/items/{item.prediction_id}").text
    for text in (queue, page):
        assert "invoice[U+202E]fdp.exe" in text
        shown = re.sub(r'value="[^"]*"|data-predicted="[^"]*"', "", text)  # form values stay raw
        assert not any(c in shown for c in HIDDEN), [c for c in HIDDEN if c in shown]
    assert "[U+001B][U+0007]" in page and "<title>[U+202E]" in page
    # the class radio button carries the label as it is, so that choosing it works
    assert f'value="{html.escape(label)}"' in page
    response = client.post(
        f"/items/{item.prediction_id}/decide", data={"label": label, "action": "decide", "csrf_token": token}
    )
    assert response.status_code == 303
    with sessions() as s:
        assert s.scalar(select(Review.final_label)) == label
