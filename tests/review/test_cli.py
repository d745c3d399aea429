"""``docsort operator create``, ``docsort export-labels`` and ``docsort serve`` as a user runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from review.export import export_labels, labelled_pages
from review.security import verify_password
from review.settings import ReviewSettings
from schema.enums import ReviewAction
from schema.tables import Operator, Prediction, Review
from tests.support.review_items import Item, make_item, make_operator
from trainer.data import scan_folder


def docsort(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, with this test's DOCSORT_* environment (set by the ``settings`` fixture)."""
    return subprocess.run(
        [sys.executable, "-m", "docsort.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=timeout,
    )


def test_operator_create_reads_the_password_from_stdin_and_stores_a_hash(
    rsettings: ReviewSettings, sessions: sessionmaker[Session]
) -> None:
    out = docsort("operator", "create", "carol", "--password-stdin", stdin="a long passphrase\n")
    assert out.returncode == 0, out.stderr
    assert "operator 'carol' ready" in out.stdout
    with sessions() as s:
        operator = s.scalar(select(Operator).where(Operator.name == "carol"))
        assert operator is not None and verify_password(operator.password_hash, "a long passphrase")
    again = docsort("operator", "create", "carol", "--password-stdin", stdin="another passphrase\n")
    assert again.returncode == 2 and "exists already" in again.stderr and "Traceback" not in again.stderr


def _review(
    s: Session, item: Item, operator_id: int, action: ReviewAction, label: str | None, ago: timedelta
) -> None:
    s.add(
        Review(
            prediction_id=item.prediction_id,
            operator_id=operator_id,
            action=action,
            final_label=label,
            decided_at=datetime.now(UTC) - ago,
        )
    )
    s.commit()


def test_export_labels_writes_one_folder_per_final_class_and_skips_rejects(
    rsettings: ReviewSettings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions() as s:
        alice = make_operator(s, "alice")
        relabelled = make_item(s, rsettings, label="invoice")
        confirmed = make_item(s, rsettings, label="invoice")
        rejected = make_item(s, rsettings, label="letter")
        old = make_item(s, rsettings, label="form")
        make_item(s, rsettings, label="form")  # still waiting: not exported
        _review(s, relabelled, alice.id, ReviewAction.relabel, "letter", timedelta(hours=1))
        _review(s, confirmed, alice.id, ReviewAction.confirm, "invoice", timedelta(hours=2))
        _review(s, rejected, alice.id, ReviewAction.reject, None, timedelta(hours=1))
        _review(s, old, alice.id, ReviewAction.confirm, "form", timedelta(days=10))
    out_dir = tmp_path / "labels"
    since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    result = docsort("export-labels", str(out_dir), "--since", since)
    assert result.returncode == 0, result.stderr
    files = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    assert files == sorted(
        [f"letter/{relabelled.sha256[:16]}-p1.png", f"invoice/{confirmed.sha256[:16]}-p1.png"]
    )
    assert (out_dir / files[0]).stat().st_size > 0
    assert "2 written" in result.stdout
    scan = scan_folder(out_dir)  # what `docsort train` reads
    assert scan.class_names == ["invoice", "letter"] and len(scan.files) == 2
    with sessions() as s:
        again = export_labels(labelled_pages(s), rsettings.dir("review"), out_dir)
    assert (again.written, again.unchanged) == (1, 2)
    assert (out_dir / "form" / f"{old.sha256[:16]}-p1.png").is_file()


def test_export_labels_keeps_only_the_latest_label_of_a_page(
    rsettings: ReviewSettings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions() as s:
        alice = make_operator(s, "alice")
        first = make_item(s, rsettings, label="invoice")
        _review(s, first, alice.id, ReviewAction.confirm, "invoice", timedelta(days=3))
        export_labels(labelled_pages(s), rsettings.dir("review"), tmp_path / "out")
        assert (tmp_path / "out" / "invoice").is_dir()
        # a newer model version sees the same page; an operator now says it is a letter
        newer = Prediction(
            page_id=first.page_id, model_name="docsort", model_version="v2", label="letter", confidence=0.5,
            scores={"invoice": 0.5, "letter": 0.5},
        )  # fmt: skip
        s.add(newer)
        s.flush()
        s.add(
            Review(
                prediction_id=newer.id,
                operator_id=alice.id,
                action=ReviewAction.confirm,
                final_label="letter",
            )
        )
        s.commit()
        pages = labelled_pages(s)
    assert [p.label for p in pages] == ["letter"]
    report = export_labels(pages, rsettings.dir("review"), tmp_path / "out")
    files = [p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.png")]
    assert [f.parts[0] for f in files] == ["letter"] and report.written == 1


def test_export_labels_reports_a_missing_image_and_goes_on(
    rsettings: ReviewSettings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions() as s:
        alice = make_operator(s, "alice")
        gone, kept = make_item(s, rsettings), make_item(s, rsettings)
        _review(s, gone, alice.id, ReviewAction.confirm, "invoice", timedelta(hours=1))
        _review(s, kept, alice.id, ReviewAction.confirm, "invoice", timedelta(hours=1))
        gone.image_path.unlink()
        report = export_labels(labelled_pages(s), rsettings.dir("review"), tmp_path / "out")
    assert report.written == 1 and len(report.missing) == 1 and f"page {gone.page_id}" in report.missing[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_with_the_login_page(rsettings: ReviewSettings) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "docsort.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/queue", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "docsort serve did not answer"
                time.sleep(0.3)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
        assert "Log in" in httpx.get(f"http://127.0.0.1:{port}/login", timeout=5).text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_refuses_an_unmigrated_database(rsettings: ReviewSettings, tmp_path: Path) -> None:
    env = {**os.environ, "DOCSORT_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    out = subprocess.run(
        [sys.executable, "-m", "docsort.cli", "serve", "--port", str(_free_port())],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and "docsort db upgrade" in out.stderr
