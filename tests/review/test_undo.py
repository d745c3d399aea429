"""The undo rule on SQLite and PostgreSQL: an answer is undoable inside the window, its document is
delivered only after the window and the grace, and never both."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from review.decisions import decide
from review.documents import record_reviewed
from review.errors import NotUndoable
from review.settings import ReviewSettings
from review.timefmt import now_utc
from review.undo import GRACE_SECONDS, deliver_due, undo
from review.whole import decide_whole
from schema.enums import DecisionOrigin
from schema.tables import DocumentReview, OutputDocument, Review, RoutingDecision
from tests.support.review import sessions_for
from tests.support.review_documents import make_document
from tests.support.review_items import make_item, make_operator
from worker.documents import Part

WINDOW = 10.0


def test_an_answer_waits_for_its_window_then_is_delivered_once(any_rsettings: ReviewSettings) -> None:
    sessions = sessions_for(any_rsettings)
    with sessions() as s:
        alice = make_operator(s, "alice").id
        item = make_item(s, any_rsettings, label="invoice")
        start = now_utc()
        decide(s, any_rsettings, prediction_id=item.prediction_id, operator_id=alice, label="letter",
               note=None, now=start, route=record_reviewed)  # fmt: skip
        assert deliver_due(s, any_rsettings, start + timedelta(seconds=WINDOW), WINDOW) == 0
        later = start + timedelta(seconds=WINDOW + GRACE_SECONDS + 1)
        with pytest.raises(NotUndoable, match="can be undone for 10 s"):
            undo(s, item.prediction_id, alice, later, WINDOW)
        assert deliver_due(s, any_rsettings, later, WINDOW) == 1
        assert deliver_due(s, any_rsettings, later, WINDOW) == 0  # delivered once
        outputs = s.scalars(select(OutputDocument).where(OutputDocument.document_id == item.document_id))
        delivered = [o for o in outputs if o.superseded_at is None]
        assert [(o.origin, o.label) for o in delivered] == [(DecisionOrigin.operator, "letter")]
        assert delivered[0].delivered_at is not None
        with pytest.raises(NotUndoable):
            undo(s, item.prediction_id, alice, start + timedelta(seconds=1), WINDOW)  # even "in time"


def test_undo_inside_the_window_puts_the_page_back_and_only_for_its_operator(
    any_rsettings: ReviewSettings,
) -> None:
    sessions = sessions_for(any_rsettings)
    with sessions() as s:
        alice = make_operator(s, "alice").id
        bob = make_operator(s, "bob").id
        item = make_item(s, any_rsettings)
        start = now_utc()
        decide(s, any_rsettings, prediction_id=item.prediction_id, operator_id=alice, label=None,
               note=None, now=start, route=record_reviewed)  # fmt: skip
        with pytest.raises(NotUndoable, match="no answer of yours"):
            undo(s, item.prediction_id, bob, start + timedelta(seconds=1), WINDOW)
        undone = undo(s, item.prediction_id, alice, start + timedelta(seconds=WINDOW - 0.5), WINDOW)
        assert undone.page_number == 1 and undone.filename.startswith("scan-")
        assert s.scalars(select(Review)).all() == []
        assert (
            s.scalars(select(RoutingDecision).where(RoutingDecision.origin == DecisionOrigin.operator)).all()
            == []
        )
        later = start + timedelta(seconds=WINDOW + GRACE_SECONDS + 1)
        assert deliver_due(s, any_rsettings, later, WINDOW) == 0  # nothing answered, nothing delivered


def test_a_whole_document_answer_is_undone_whole_or_delivered_as_its_parts(
    any_rsettings: ReviewSettings,
) -> None:
    sessions = sessions_for(any_rsettings)
    with sessions() as s:
        alice = make_operator(s, "alice").id
        doc = make_document(s, any_rsettings, ["invoice", "invoice", "letter"])
        parts = [Part((1,), "invoice"), Part((2, 3), "letter")]
        start = now_utc()
        decide_whole(s, any_rsettings, prediction_id=doc.prediction_ids[0], parts=parts,
                     operator_id=alice, now=start, deliver_now=False)  # fmt: skip
        assert len(s.scalars(select(Review)).all()) == 3
        undo(s, doc.prediction_ids[2], alice, start + timedelta(seconds=1), WINDOW)  # any page of it
        assert s.scalars(select(Review)).all() == [] and s.scalars(select(DocumentReview)).all() == []

        decide_whole(s, any_rsettings, prediction_id=doc.prediction_ids[1], parts=parts,
                     operator_id=alice, now=start, deliver_now=False)  # fmt: skip
        later = start + timedelta(seconds=WINDOW + GRACE_SECONDS + 1)
        assert deliver_due(s, any_rsettings, later, WINDOW) == 1
        made = s.scalars(
            select(OutputDocument).where(
                OutputDocument.document_id == doc.document_id, OutputDocument.superseded_at.is_(None)
            )
        ).all()
        assert [(o.pages, o.label, o.delivered_at is not None) for o in made] == [
            ([1], "invoice", True),
            ([2, 3], "letter", True),
        ]
