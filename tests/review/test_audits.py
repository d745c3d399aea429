"""Audit items for operators: listed, answered once, never delivered again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from review.audits import answer_audit, audit_items, load_audit
from review.errors import AlreadyDecided, InvalidLabel, ItemNotFound
from review.settings import ReviewSettings
from schema.enums import DecisionKind
from schema.tables import Audit, OutputDocument
from tests.support.quality import route_document
from tests.support.review import sessions_for
from tests.support.review_items import make_operator

SCORES = {"invoice": 0.97, "letter": 0.02, "form": 0.01}
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def any_sessions(any_rsettings: ReviewSettings) -> sessionmaker[Session]:
    return sessions_for(any_rsettings)


def _audited(session: Session, n: int = 3) -> list[int]:
    ids = []
    for i in range(n):
        routed = route_document(
            session,
            label="invoice",
            scores=SCORES,
            when=NOW - timedelta(hours=n - i),
            audited=True,
            destination=f"/outbox/invoice/routed-{i}.png",
        )
        assert routed.audit_id is not None
        ids.append(routed.audit_id)
    route_document(session, label="letter", scores=SCORES, when=NOW)  # auto, not audited
    route_document(session, label="form", scores=SCORES, kind=DecisionKind.review, when=NOW)
    session.commit()
    return ids


def test_waiting_audits_are_listed_oldest_first_with_their_pages_and_classes(
    any_sessions: sessionmaker[Session],
) -> None:
    with any_sessions() as s:
        ids = _audited(s)
        items = audit_items(s)
    assert [i.audit_id for i in items] == ids
    first = items[0]
    assert first.label == "invoice" and first.class_names == ["invoice", "letter", "form"]
    assert [p.page_number for p in first.pages] == [1] and first.delivered_at is not None
    assert first.destination == "/outbox/invoice/routed-0.png" and first.answered_at is None


def test_answers_record_right_wrong_and_rejected_and_deliver_nothing(
    any_sessions: sessionmaker[Session],
) -> None:
    with any_sessions() as s:
        ids = _audited(s)
        ann = make_operator(s, "ann")
        before = {o.id: (o.delivered_at, o.destination, o.kind) for o in s.scalars(select(OutputDocument))}
        right = answer_audit(s, audit_id=ids[0], operator_id=ann.id, label="invoice", now=NOW)
        wrong = answer_audit(s, audit_id=ids[1], operator_id=ann.id, label="letter", now=NOW, note=" torn ")
        rejected = answer_audit(s, audit_id=ids[2], operator_id=ann.id, label=None, now=NOW)
        assert (right.correct, wrong.correct, rejected.correct) == (True, False, False)
        assert wrong.answered_by == "ann" and wrong.answer_label == "letter"
        assert s.get(Audit, ids[1]).note == "torn"  # type: ignore[union-attr]
        after = {o.id: (o.delivered_at, o.destination, o.kind) for o in s.scalars(select(OutputDocument))}
        assert after == before  # nothing delivered, superseded or changed
        assert audit_items(s) == [] and [i.audit_id for i in audit_items(s, waiting=False)] == ids[::-1]


def test_an_audit_is_answered_once_and_the_first_answer_stays(any_sessions: sessionmaker[Session]) -> None:
    with any_sessions() as s:
        (audit_id,) = _audited(s, 1)
        ann, bob = make_operator(s, "ann"), make_operator(s, "bob")
        ann_id, bob_id = ann.id, bob.id
    with any_sessions() as first, any_sessions() as second:
        assert load_audit(second, audit_id).answered_at is None  # bob opened it before ann answered
        answer_audit(first, audit_id=audit_id, operator_id=ann_id, label="invoice", now=NOW)
        with pytest.raises(AlreadyDecided, match="already answered by ann"):
            answer_audit(second, audit_id=audit_id, operator_id=bob_id, label="letter", now=NOW)
    with any_sessions() as s:
        audit = s.get(Audit, audit_id)
        assert audit is not None and (audit.answer_label, audit.operator_id, audit.correct) == (
            "invoice",
            ann_id,
            True,
        )


def test_unknown_class_and_unknown_item_are_refused(any_sessions: sessionmaker[Session]) -> None:
    with any_sessions() as s:
        (audit_id,) = _audited(s, 1)
        ann = make_operator(s, "ann")
        with pytest.raises(InvalidLabel, match="'receipt' is not one of the model's classes"):
            answer_audit(s, audit_id=audit_id, operator_id=ann.id, label="receipt", now=NOW)
        with pytest.raises(ItemNotFound):
            answer_audit(s, audit_id=audit_id + 100, operator_id=ann.id, label="invoice", now=NOW)
        assert s.get(Audit, audit_id).answered_at is None  # type: ignore[union-attr]
