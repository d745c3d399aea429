"""Decisions: the review row, the routed file, and never twice, even at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from review.app import create_app
from review.decisions import decide, deliver_reviewed
from review.errors import AlreadyDecided, ItemNotFound, ItemTaken
from review.settings import ReviewSettings
from schema.enums import DecisionKind, DecisionOrigin, ReviewAction
from schema.tables import OutputDocument, Review, ReviewClaim, RoutingDecision
from tests.support.review import LiveServer, login, sessions_for
from tests.support.review_items import Item, make_item, make_operator


def operator_decisions(s: Session, prediction_id: int) -> list[RoutingDecision]:
    return list(
        s.scalars(
            select(RoutingDecision).where(
                RoutingDecision.prediction_id == prediction_id,
                RoutingDecision.origin == DecisionOrigin.operator,
            )
        )
    )


def routed_files(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.rglob("*") if p.is_file())


@pytest.fixture
def alice_client(client: TestClient, sessions: sessionmaker[Session]) -> Iterator[tuple[TestClient, str]]:
    with sessions() as s:
        make_operator(s, "alice")
    yield client, login(client, "alice")


def test_relabel_records_review_and_routes_the_page_to_the_new_class(
    alice_client: tuple[TestClient, str], sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    client, token = alice_client
    with sessions() as s:
        item = make_item(s, rsettings, label="invoice")
    assert client.get(f"/items/{item.prediction_id}").status_code == 200  # opening claims it
    response = client.post(
        f"/items/{item.prediction_id}/decide",
        data={"label": "letter", "action": "decide", "note": " two pages stuck ", "csrf_token": token},
    )
    assert response.status_code == 303
    with sessions() as s:
        review = s.scalar(select(Review).where(Review.prediction_id == item.prediction_id))
        assert review is not None
        assert (review.action, review.final_label, review.note) == (
            ReviewAction.relabel,
            "letter",
            "two pages stuck",
        )
        assert review.opened_at is not None and review.duration_ms is not None and review.duration_ms >= 0
        [decision] = operator_decisions(s, item.prediction_id)
        assert (decision.kind, decision.label) == (DecisionKind.auto, "letter")
        assert s.get(ReviewClaim, item.prediction_id) is None
    routed = Path(decision.destination or "")
    outbox = rsettings.dir("outbox")
    assert routed.is_file() and routed.is_relative_to(outbox.resolve())
    assert routed.parent.parent.name == "letter"
    assert routed.read_bytes() == item.original.read_bytes()
    assert routed_files(outbox) == [routed]


def test_confirm_and_reject_record_their_actions(
    alice_client: tuple[TestClient, str], sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    client, token = alice_client
    with sessions() as s:
        confirmed, rejected = make_item(s, rsettings, label="form"), make_item(s, rsettings, label="form")
    client.post(f"/items/{confirmed.prediction_id}/decide", data={"label": "form", "csrf_token": token})
    client.post(f"/items/{rejected.prediction_id}/decide", data={"action": "reject", "csrf_token": token})
    with sessions() as s:
        a = s.scalar(select(Review).where(Review.prediction_id == confirmed.prediction_id))
        b = s.scalar(select(Review).where(Review.prediction_id == rejected.prediction_id))
        assert a is not None and (a.action, a.final_label) == (ReviewAction.confirm, "form")
        assert b is not None and (b.action, b.final_label) == (ReviewAction.reject, None)
        [gone] = operator_decisions(s, rejected.prediction_id)
        assert gone.kind == DecisionKind.failed
    assert "_rejected" in Path(gone.destination or "").parts


def test_label_outside_the_model_classes_is_refused(
    alice_client: tuple[TestClient, str], sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    client, token = alice_client
    with sessions() as s:
        item = make_item(s, rsettings)
    response = client.post(
        f"/items/{item.prediction_id}/decide", data={"label": "../../etc", "csrf_token": token}
    )
    assert response.status_code == 400
    with sessions() as s:
        assert s.scalar(select(func.count(Review.id))) == 0
    assert routed_files(rsettings.dir("outbox")) == []


def test_second_decision_on_a_page_is_refused_as_already_decided(
    alice_client: tuple[TestClient, str], sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    client, token = alice_client
    with sessions() as s:
        item = make_item(s, rsettings)
    decide_url = f"/items/{item.prediction_id}/decide"
    assert client.post(decide_url, data={"label": "letter", "csrf_token": token}).status_code == 303
    again = client.post(decide_url, data={"label": "form", "csrf_token": token})
    assert again.status_code == 409
    assert "already decided by alice" in again.text
    with sessions() as s:
        assert s.scalar(select(func.count(Review.id))) == 1
        assert len(operator_decisions(s, item.prediction_id)) == 1
    assert len(routed_files(rsettings.dir("outbox"))) == 1


def test_page_held_by_another_operator_cannot_be_decided(
    alice_client: tuple[TestClient, str],
    app: object,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
) -> None:
    alice, _ = alice_client
    with sessions() as s:
        make_operator(s, "bob")
        item = make_item(s, rsettings)
    assert alice.get(f"/items/{item.prediction_id}").status_code == 200
    with TestClient(app, follow_redirects=False) as bob:  # type: ignore[arg-type]
        token = login(bob, "bob")
        page = bob.get(f"/items/{item.prediction_id}")
        assert "Taken:" in page.text and "alice" in page.text
        response = bob.post(
            f"/items/{item.prediction_id}/decide", data={"label": "letter", "csrf_token": token}
        )
    assert response.status_code == 409
    assert "alice holds this page" in response.text
    with sessions() as s:
        assert s.scalar(select(func.count(Review.id))) == 0


def test_routing_failure_keeps_the_page_in_the_queue(
    alice_client: tuple[TestClient, str], sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    client, token = alice_client
    with sessions() as s:
        item = make_item(s, rsettings)
    item.original.unlink()
    item.image_path.unlink()  # nothing left to deliver
    response = client.post(
        f"/items/{item.prediction_id}/decide", data={"label": "letter", "csrf_token": token}
    )
    assert response.status_code == 500
    assert "could not be routed" in response.text and "not saved" in response.text
    with sessions() as s:
        assert s.scalar(select(func.count(Review.id))) == 0
        assert operator_decisions(s, item.prediction_id) == []
    assert f"/items/{item.prediction_id}" in client.get("/queue").text


def _two_operators(settings: ReviewSettings) -> tuple[Item, int, int]:
    with sessions_for(settings)() as s:
        a, b = make_operator(s, "alice"), make_operator(s, "bob")
        return make_item(s, settings), a.id, b.id


def test_decision_waiting_on_an_uncommitted_one_is_refused(any_rsettings: ReviewSettings) -> None:
    """Bob decides while Alice's decision is written but not yet committed: Bob waits, then is refused."""
    item, alice, bob = _two_operators(any_rsettings)
    factory = sessions_for(any_rsettings)
    routing, go_on = threading.Event(), threading.Event()

    def slow_route(session: Session, settings: object, prediction_id: int, label: str | None) -> object:
        routing.set()
        assert go_on.wait(20)
        return deliver_reviewed(session, any_rsettings, prediction_id, label)

    outcomes: dict[str, object] = {}

    def run(who: str, operator_id: int, label: str, route: object) -> None:
        with factory() as s:
            try:
                outcomes[who] = decide(
                    s,
                    any_rsettings,
                    prediction_id=item.prediction_id,
                    operator_id=operator_id,
                    label=label,
                    note=None,
                    now=datetime.now(UTC),
                    route=route,  # type: ignore[arg-type]
                )
            except Exception as exc:
                outcomes[who] = exc

    first = threading.Thread(target=run, args=("alice", alice, "letter", slow_route))
    first.start()
    assert routing.wait(20)  # Alice's review row is flushed and she is routing
    second = threading.Thread(target=run, args=("bob", bob, "form", deliver_reviewed))
    second.start()
    second.join(0.5)
    assert second.is_alive(), "the second decision must wait for the first to finish"
    go_on.set()
    first.join(30)
    second.join(30)
    assert not isinstance(outcomes["alice"], Exception), outcomes["alice"]
    assert isinstance(outcomes["bob"], AlreadyDecided), outcomes["bob"]
    with factory() as s:
        [review] = s.scalars(select(Review))
        assert (review.operator_id, review.final_label) == (alice, "letter")
        assert len(operator_decisions(s, item.prediction_id)) == 1
    assert len(routed_files(any_rsettings.dir("outbox"))) == 1


def test_two_simultaneous_http_decisions_record_one(any_rsettings: ReviewSettings) -> None:
    """Two sessions of one operator submit the same page at the same moment against a real server."""
    with sessions_for(any_rsettings)() as s:
        make_operator(s, "alice")
        item = make_item(s, any_rsettings)
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    with LiveServer(create_app(any_rsettings)) as server:
        clients = [httpx.Client(base_url=server.url, follow_redirects=False, timeout=60) for _ in range(2)]
        tokens = [login(c, "alice") for c in clients]
        clients[0].get(f"/items/{item.prediction_id}")

        def submit(i: int) -> None:
            barrier.wait()
            data = {"label": ["letter", "form"][i], "csrf_token": tokens[i]}
            statuses.append(clients[i].post(f"/items/{item.prediction_id}/decide", data=data).status_code)

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for c in clients:
            c.close()
    assert sorted(statuses) == [303, 409]
    with sessions_for(any_rsettings)() as s:
        assert s.scalar(select(func.count(Review.id))) == 1
        assert len(operator_decisions(s, item.prediction_id)) == 1
    assert len(routed_files(any_rsettings.dir("outbox"))) == 1


def test_decide_refuses_a_live_claim_of_another_operator(rsettings: ReviewSettings) -> None:
    from datetime import timedelta

    from review.claims import claim

    item, alice, bob = _two_operators(rsettings)
    with sessions_for(rsettings)() as s:
        now = datetime.now(UTC)
        assert claim(s, item.prediction_id, alice, now, timedelta(minutes=5)).mine  # type: ignore[union-attr]
        with pytest.raises(ItemTaken):
            decide(
                s,
                rsettings,
                prediction_id=item.prediction_id,
                operator_id=bob,
                label="form",
                note=None,
                now=now,
            )
        later = now + timedelta(minutes=6)  # the claim has run out: bob may decide
        outcome = decide(
            s,
            rsettings,
            prediction_id=item.prediction_id,
            operator_id=bob,
            label="form",
            note=None,
            now=later,
        )
        assert outcome.action == ReviewAction.relabel and outcome.duration_ms is None


def test_deliver_reviewed_delivers_once_with_operator_origin_from_the_received_file(
    sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        item = make_item(s, rsettings, label="invoice")
    with sessions() as s:
        first = deliver_reviewed(s, rsettings, item.prediction_id, "letter")
        s.commit()
        second = deliver_reviewed(s, rsettings, item.prediction_id, "letter")
        assert first.id == second.id and first.applied_at is not None
        assert (first.origin, first.kind) == (DecisionOrigin.operator, DecisionKind.auto)
        assert first.label == "letter"
        assert "letter" in Path(first.destination or "").parts and Path(first.destination or "").is_file()
    (delivered,) = routed_files(rsettings.dir("outbox"))
    assert delivered.read_bytes() == item.original.read_bytes()  # the file as it was scanned
    with sessions() as s:
        (model, operator) = s.scalars(select(OutputDocument).order_by(OutputDocument.id)).all()
        assert model.superseded_at is not None and operator.origin == DecisionOrigin.operator
        assert (operator.pages, operator.label, operator.destination) == ([1], "letter", str(delivered))


def test_a_page_whose_file_is_gone_is_not_decided(
    alice_client: tuple[TestClient, str], sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    client, token = alice_client
    with sessions() as s:
        item = make_item(s, rsettings, label="invoice")
    item.original.unlink()
    client.get(f"/items/{item.prediction_id}")
    response = client.post(
        f"/items/{item.prediction_id}/decide",
        data={"label": "letter", "action": "decide", "note": "", "csrf_token": token},
    )
    assert response.status_code == 500 and "its file is gone" in response.text
    with sessions() as s:
        assert s.scalars(select(Review)).all() == []  # nothing kept: the page stays in the queue
        assert routed_files(rsettings.dir("outbox")) == []


def test_deliver_reviewed_rejected_page_goes_to_the_rejected_destination(
    sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        item = make_item(s, rsettings)
        decision = deliver_reviewed(s, rsettings, item.prediction_id, None)
        assert decision.kind == DecisionKind.failed and decision.rule == "rejected"
        assert "_rejected" in Path(decision.destination or "").parts


def test_deliver_reviewed_of_an_unknown_page_is_refused(
    sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s, pytest.raises(ItemNotFound):
        deliver_reviewed(s, rsettings, 999_999, "letter")
