"""The queue: oldest first, counts, filters, claims that show who holds a page, and J/K neighbours."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from review.claims import claim, current_claim, release
from review.queue import QueueFilters, list_pending, neighbours, open_ids, summarize
from review.settings import ReviewSettings
from tests.support.review import login
from tests.support.review_items import make_item, make_operator

ROW_IDS = re.compile(r'<tr data-href="/items/(\d+)')


def test_queue_lists_pending_pages_oldest_first_with_counts(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        newest = make_item(s, rsettings, waiting_for=timedelta(minutes=5))
        oldest = make_item(s, rsettings, waiting_for=timedelta(hours=3, minutes=7), label="letter")
        middle = make_item(s, rsettings, waiting_for=timedelta(hours=1))
    login(client, "alice")
    html = client.get("/queue").text
    assert [int(i) for i in ROW_IDS.findall(html)] == [
        oldest.prediction_id,
        middle.prediction_id,
        newest.prediction_id,
    ]
    assert re.search(r'data-testid="pending-total">3<', html)
    assert re.search(r'data-testid="oldest-age">3h 0[67]m<', html)
    assert re.search(r"invoice <b>2</b>", html) and re.search(r"letter <b>1</b>", html)


def test_queue_filters_by_class_source_and_model_version(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        a = make_item(s, rsettings, label="invoice", source="watch", model_version="v1")
        b = make_item(s, rsettings, label="letter", source="api", model_version="v1")
        c = make_item(s, rsettings, label="letter", source="watch", model_version="v2")
    login(client, "alice")

    def ids(query: str) -> list[int]:
        return [int(i) for i in ROW_IDS.findall(client.get(f"/queue?{query}").text)]

    assert sorted(ids("class=letter")) == sorted([b.prediction_id, c.prediction_id])
    assert sorted(ids("source=watch")) == sorted([a.prediction_id, c.prediction_id])
    assert ids("version=v2") == [c.prediction_id]
    assert ids("class=letter&source=api&version=v1") == [b.prediction_id]
    assert 'data-testid="queue-empty"' in client.get("/queue?class=receipt").text


def test_decided_page_leaves_the_queue(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        first = make_item(s, rsettings, waiting_for=timedelta(hours=2))
        second = make_item(s, rsettings, waiting_for=timedelta(hours=1))
    token = login(client, "alice")
    response = client.post(
        f"/items/{first.prediction_id}/decide", data={"label": "form", "csrf_token": token}
    )
    assert response.headers["location"] == f"/items/{second.prediction_id}"  # on to the next page
    assert [int(i) for i in ROW_IDS.findall(client.get("/queue").text)] == [second.prediction_id]
    decided = client.get(f"/items/{first.prediction_id}").text
    assert 'data-testid="decided"' in decided and "alice" in decided


def test_opened_page_shows_as_taken_to_others_until_released(
    client: TestClient, app: object, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        make_operator(s, "bob")
        item = make_item(s, rsettings)
    alice_token = login(client, "alice")
    client.get(f"/items/{item.prediction_id}")
    assert "yours" in client.get("/queue").text
    with TestClient(app, follow_redirects=False) as bob:  # type: ignore[arg-type]
        login(bob, "bob")
        assert "taken · alice" in bob.get("/queue").text
        client.post(
            f"/items/{item.prediction_id}/release", data={"next": "/queue", "csrf_token": alice_token}
        )
        assert "taken · alice" not in bob.get("/queue").text
        assert "Taken:" not in bob.get(f"/items/{item.prediction_id}").text  # bob holds it now
    assert "taken · bob" in client.get("/queue").text


def test_claim_goes_to_one_operator_and_expires(
    sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        alice, bob = make_operator(s, "alice"), make_operator(s, "bob")
        item = make_item(s, rsettings)
    now, ttl = datetime.now(UTC), timedelta(seconds=rsettings.review_claim_seconds)
    with sessions() as a, sessions() as b:
        held = claim(a, item.prediction_id, alice.id, now, ttl)
        assert held is not None and held.mine
        other = claim(b, item.prediction_id, bob.id, now + timedelta(seconds=1), ttl)
        assert other is not None and not other.mine and other.holder_name == "alice"
        again = claim(a, item.prediction_id, alice.id, now + timedelta(seconds=30), ttl)
        assert again is not None and again.claimed_at == held.claimed_at  # reopening keeps the start time
        after = now + ttl + timedelta(seconds=31)
        assert current_claim(b, item.prediction_id, bob.id, after) is None
        taken_over = claim(b, item.prediction_id, bob.id, after, ttl)
        assert taken_over is not None and taken_over.mine
        assert not release(a, item.prediction_id, alice.id)  # alice no longer holds it
        assert release(b, item.prediction_id, bob.id)


def test_next_item_skips_pages_held_by_others(
    sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        alice, bob = make_operator(s, "alice"), make_operator(s, "bob")
        items = [make_item(s, rsettings, waiting_for=timedelta(minutes=50 - i)) for i in range(4)]
        now = datetime.now(UTC)
        claim(s, items[1].prediction_id, bob.id, now, timedelta(minutes=5))
        ids = open_ids(s, QueueFilters(), alice.id, now)
        assert ids == [items[0].prediction_id, items[2].prediction_id, items[3].prediction_id]
        assert neighbours(ids, items[2].prediction_id) == (items[0].prediction_id, items[3].prediction_id)
        page, count = list_pending(s, QueueFilters(), now, limit=2)
        assert count == 4 and [i.prediction_id for i in page] == [
            items[0].prediction_id,
            items[1].prediction_id,
        ]
        assert page[1].claimed_by == "bob"
        summary = summarize(s, now)
        assert (summary.total, summary.held) == (4, 1)
