"""Migrations run up and down on SQLite and PostgreSQL, and the constraints hold on both."""

from __future__ import annotations

import pytest
from sqlalchemy import event, inspect
from sqlalchemy.engine.default import CACHE_HIT
from sqlalchemy.exc import IntegrityError

from schema import db
from schema.enums import ReviewAction
from schema.tables import Base, Document, Operator, Page, Prediction, Review


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_upgrade_then_downgrade_leave_nothing(any_db_url: str) -> None:
    db.upgrade(any_db_url)
    assert db.current_revision(any_db_url) == db.head_revision()
    assert set(Base.metadata.tables) <= _tables(any_db_url)
    db.downgrade(any_db_url, "base")
    assert db.current_revision(any_db_url) is None
    assert _tables(any_db_url) <= {"alembic_version"}
    db.upgrade(any_db_url)  # and up again, cleanly
    assert db.current_revision(any_db_url) == db.head_revision()


def test_models_match_migrations(migrated_db_url: str) -> None:
    """No table or column exists in the models that the migrations forgot (autogenerate finds nothing)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = db.make_engine(migrated_db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def _session(url: str):  # type: ignore[no-untyped-def]
    return db.make_sessionmaker(db.make_engine(url))()


def _page(session, sha: str = "a" * 64) -> Page:  # type: ignore[no-untyped-def]
    doc = Document(sha256=sha, source="submit", filename="x.png")
    page = Page(document=doc, page_number=1)
    session.add_all([doc, page])
    session.flush()
    return page


def test_second_document_with_same_sha256_is_refused(migrated_db_url: str) -> None:
    session = _session(migrated_db_url)
    session.add(Document(sha256="f" * 64, source="watch"))
    session.commit()
    session.add(Document(sha256="f" * 64, source="api"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert session.query(Document).count() == 1
    session.close()


def test_one_prediction_per_page_and_model_version(migrated_db_url: str) -> None:
    session = _session(migrated_db_url)
    page = _page(session)
    common = dict(page_id=page.id, model_name="m", label="text", confidence=0.9, scores={"text": 0.9})
    session.add(Prediction(model_version="1", **common))
    session.add(Prediction(model_version="2", **common))  # another version: allowed
    session.commit()
    session.add(Prediction(model_version="1", **common))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert session.query(Prediction).count() == 2
    session.close()


def test_review_must_name_an_existing_prediction(migrated_db_url: str) -> None:
    session = _session(migrated_db_url)
    op = Operator(name="ana", password_hash="x")
    session.add(op)
    session.commit()
    session.add(Review(prediction_id=987654, operator_id=op.id, action=ReviewAction.confirm))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert session.query(Review).count() == 0
    session.close()


def test_page_cannot_be_reviewed_twice(migrated_db_url: str) -> None:
    session = _session(migrated_db_url)
    page = _page(session, "b" * 64)
    pred = Prediction(
        page_id=page.id,
        model_name="m",
        model_version="1",
        label="a",
        confidence=0.5,
        scores={"a": 0.5, "b": 0.5},
    )
    op = Operator(name="bo", password_hash="x")
    session.add_all([pred, op])
    session.commit()
    session.add(Review(prediction_id=pred.id, operator_id=op.id, action=ReviewAction.confirm))
    session.commit()
    session.add(Review(prediction_id=pred.id, operator_id=op.id, action=ReviewAction.reject))
    with pytest.raises(IntegrityError):
        session.commit()
    session.close()


def test_confidence_outside_zero_one_is_refused(migrated_db_url: str) -> None:
    session = _session(migrated_db_url)
    page = _page(session, "c" * 64)
    session.add(
        Prediction(page_id=page.id, model_name="m", model_version="1", label="a", confidence=1.5, scores={})
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.close()


def test_insert_ignore_many_skips_existing_rows_and_is_compiled_once(migrated_db_url: str) -> None:
    session = _session(migrated_db_url)
    engine = session.get_bind()
    hits: list[bool] = []

    @event.listens_for(engine, "before_cursor_execute")
    def cache_hit(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO DOCUMENTS"):
            hits.append(context.cache_hit == CACHE_HIT)

    def rows(*shas: str) -> list[dict[str, str]]:
        return [{"sha256": sha * 64, "source": "watch"} for sha in shas]

    assert db.insert_ignore_many(session, Document, rows("a", "b"), ["sha256"]) == 2
    assert db.insert_ignore_many(session, Document, rows("b", "c", "d"), ["sha256"]) == 2  # b is there
    assert db.insert_ignore(session, Document, rows("a")[0], ["sha256"]) is False
    assert db.insert_ignore(session, Document, rows("e")[0], ["sha256"]) is True
    session.commit()
    assert sorted(d.sha256[0] for d in session.query(Document)) == ["a", "b", "c", "d", "e"]
    # compiled once for many rows and once for a single row (a separate form), then taken from the cache
    assert hits == [False, True, False, True]
    session.close()
    engine.dispose()
