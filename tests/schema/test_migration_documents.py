"""Revision 0003 turns the rows of a database made before documents into output documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from schema import db

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _insert(conn: sa.Connection, table: str, **values: object) -> int:
    meta = sa.MetaData()
    t = sa.Table(table, meta, autoload_with=conn)
    return int(conn.execute(t.insert().values(**values).returning(t.c.id)).scalar_one())


def _file(conn: sa.Connection, n: int, state: str, error: str | None = None) -> int:
    return _insert(
        conn,
        "documents",
        sha256=f"{n:064x}",
        source="watch",
        source_ref="",
        filename=f"f{n}.tif",
        state=state,
        error=error,
        received_at=T0,
        finished_at=T0 + timedelta(seconds=n),
    )


def _page(
    conn: sa.Connection, doc: int, number: int, scores: dict[str, float], kind: str, **dec: object
) -> int:
    page = _insert(conn, "pages", document_id=doc, page_number=number)
    label = max(scores, key=scores.__getitem__)
    pred = _insert(
        conn,
        "predictions",
        page_id=page,
        model_name="m",
        model_version="1",
        label=label,
        confidence=max(scores.values()),
        margin=0.0,
        scores=scores,
        latency_ms=1.0,
        worker="w",
        created_at=T0,
    )
    _insert(
        conn,
        "routing_decisions",
        document_id=doc,
        page_id=page,
        prediction_id=pred,
        origin="model",
        kind=kind,
        label=label,
        decided_at=T0,
        **dec,
    )
    return pred


def _pages(row: sa.RowMapping) -> list[int]:
    value = row["pages"]
    return list(json.loads(value) if isinstance(value, str) else value)  # SQLite returns JSON as text


def test_existing_files_pages_and_decisions_become_output_documents(any_db_url: str) -> None:
    db.upgrade(any_db_url, "0002")
    engine = db.make_engine(any_db_url)
    applied = T0 + timedelta(minutes=1)
    with engine.begin() as conn:
        auto = _file(conn, 1, "done")
        for n in (1, 2):
            _page(conn, auto, n, {"a": 0.9, "b": 0.1}, "auto", applied_at=applied, destination=f"/out/a/{n}")
        failed = _file(conn, 2, "failed", "truncated file")
        waiting = _file(conn, 3, "done")
        _page(conn, waiting, 1, {"a": 0.55, "b": 0.45}, "review")
        decided = _file(conn, 4, "done")
        operator = _insert(conn, "operators", name="ann", password_hash="x", active=True, created_at=T0)
        for n, label in ((1, "b"), (2, "b"), (3, None)):
            pred = _page(conn, decided, n, {"a": 0.5, "b": 0.5}, "review")
            page = conn.execute(
                sa.text("SELECT page_id FROM predictions WHERE id = :p"), {"p": pred}
            ).scalar()
            _insert(
                conn,
                "routing_decisions",
                document_id=decided,
                page_id=page,
                prediction_id=pred,
                origin="operator",
                kind="auto" if label else "failed",
                label=label,
                decided_at=applied,
                applied_at=applied + timedelta(seconds=n),
                destination=f"/out/b/{n}",
            )
            _insert(
                conn,
                "reviews",
                prediction_id=pred,
                operator_id=operator,
                action="relabel" if label else "reject",
                final_label=label,
                decided_at=applied,
            )
    db.upgrade(any_db_url)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                sa.text(
                    "SELECT document_id, origin, generation, seq, pages, kind, label, delivered_at, "
                    "superseded_at, operator_id FROM output_documents ORDER BY document_id, generation, seq"
                )
            )
            .mappings()
            .all()
        )
        roles = set(conn.execute(sa.text("SELECT role FROM pages")).scalars())
    engine.dispose()
    assert rows, "no output documents"
    by_file: dict[int, list[sa.RowMapping]] = {}
    for row in rows:
        by_file.setdefault(row["document_id"], []).append(row)
    (a,) = by_file[auto]
    assert (a["kind"], a["label"], a["delivered_at"] is not None) == ("auto", "a", True)
    assert _pages(a) == [1, 2]
    (f,) = by_file[failed]
    assert (f["kind"], _pages(f)) == ("failed", [])
    (w,) = by_file[waiting]
    assert (w["kind"], w["delivered_at"], w["superseded_at"]) == ("review", None, None)
    model, *ops = by_file[decided]
    assert model["kind"] == "review" and model["superseded_at"] is not None
    assert [(o["origin"], _pages(o), o["label"], o["kind"]) for o in ops] == [
        ("operator", [1, 2], "b", "auto"),
        ("operator", [3], None, "failed"),
    ]
    assert all(o["delivered_at"] is not None and o["operator_id"] == operator for o in ops)
    assert roles == {"content"}
