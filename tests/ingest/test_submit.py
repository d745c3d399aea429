"""`docsort submit` and `docsort status` as real processes, through real Redis to a real `docsort worker`."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pikepdf
import pytest
import redis
from PIL import Image
from sqlalchemy import func, select

from ingest.settings import IngestSettings
from schema import db
from schema.tables import Document, Page, Prediction, SubmissionJob
from tests.support.ingest import DOCSORT, docsort_env, png_bytes, queued_document_ids
from tests.support.intake import activate_tiny_model
from tests.support.worker_proc import StartWorker

FIELDS = ("path", "page", "status", "label", "confidence", "decision", "error")


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DOCSORT), *args], env=docsort_env(), capture_output=True, text=True, timeout=timeout
    )


def _page(grey: int) -> Image.Image:
    return Image.fromarray(np.full((64, 48, 3), grey, dtype=np.uint8), "RGB")


def _batch(root: Path) -> Path:
    folder = root / "batch"
    (folder / "sub").mkdir(parents=True)
    _page(0).save(folder / "dark.png")
    _page(255).save(folder / "sub" / "light.jpg", quality=95)
    _page(128).save(folder / "grey.png")
    buf = io.BytesIO()
    _page(0).save(buf, format="TIFF", save_all=True, append_images=[_page(255)])
    (folder / "two.tif").write_bytes(buf.getvalue())
    (folder / "broken.png").write_bytes(png_bytes(5)[:40])
    (folder / "~lock.png").write_bytes(b"ignored")
    return folder


def test_submit_sends_one_job_through_the_broker_and_leaves_the_originals(
    ingest_settings: IngestSettings, tmp_path: Path, rclient: redis.Redis
) -> None:
    folder = _batch(tmp_path)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    done = _run("submit", str(folder), str(folder / "dark.png"))
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.split()[1].rstrip(":")
    engine = db.make_engine(ingest_settings.database_url)
    with db.session_scope(db.make_sessionmaker(engine)) as s:
        job = s.get(SubmissionJob, job_id)
        assert job is not None and job.source == "submit"
        assert (job.n_documents, job.n_duplicate) == (6, 1)  # dark.png given twice
        n_docs = s.scalar(select(func.count(Document.id)))
        refs = sorted(s.scalars(select(Document.source_ref)))
    engine.dispose()
    assert n_docs == 5
    assert refs == sorted(str(p) for p in before if p.name != "~lock.png")
    assert len(queued_document_ids(rclient, ingest_settings.job_queue)) == 5
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_submit_of_a_missing_path_names_it_and_sends_nothing(
    ingest_settings: IngestSettings, tmp_path: Path, rclient: redis.Redis
) -> None:
    done = _run("submit", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert f"{tmp_path / 'nowhere'}: no such file or folder" in done.stderr
    assert queued_document_ids(rclient, ingest_settings.job_queue) == []


@pytest.mark.slow
def test_submit_wait_json_gives_each_page_the_fields_and_outcome_of_classify_json(
    ingest_settings: IngestSettings, docsort_worker: StartWorker, tmp_path: Path
) -> None:
    activate_tiny_model(ingest_settings)
    folder = _batch(tmp_path)
    docsort_worker(ingest_settings, queue=ingest_settings.job_queue)
    submitted = _run("submit", str(folder), "--wait", "--json", "--timeout", "90")
    inline = _run(
        "classify", str(folder), "--json", "--model", str(ingest_settings.models_dir / "tiny" / "1")
    )
    assert submitted.returncode == inline.returncode == 1, submitted.stderr  # broken.png failed in both
    got = [json.loads(line) for line in submitted.stdout.splitlines()]
    # (`docsort classify` may print log lines on stdout too: only its JSON lines are compared)
    want = [json.loads(line) for line in inline.stdout.splitlines() if line.startswith("{")]
    # submit skips temporary names (`~lock.png`) that classify, given them, reports as unreadable
    assert [r["status"] for r in want if r["path"].endswith("~lock.png")] == ["error"]
    want = [r for r in want if not r["path"].endswith("~lock.png")]
    assert all(tuple(row) == FIELDS for row in got)
    assert [(r["path"], r["page"], r["status"], r["label"]) for r in got] == [
        (r["path"], r["page"], r["status"], r["label"]) for r in want
    ]
    assert [r["confidence"] for r in got] == pytest.approx([r["confidence"] for r in want], abs=1e-4)
    # a page's decision is its document's: a one-page file's is the page's own, as classify says
    one_page = [(r["path"], r["decision"]) for r in got if not r["path"].endswith("two.tif")]
    assert one_page == [(r["path"], r["decision"]) for r in want if not r["path"].endswith("two.tif")]
    labels = {(Path(r["path"]).name, r["page"]): (r["label"], r["decision"]) for r in got}
    assert labels[("dark.png", 1)] == ("dark", "auto")
    # two.tif (a dark and a light page) is one document: unsure as a whole, it goes to review
    assert labels[("two.tif", 1)] == ("dark", "review") and labels[("two.tif", 2)] == ("light", "review")
    assert labels[("grey.png", 1)][1] == "review"
    broken = [r for r in got if r["status"] == "error"]
    assert [Path(r["path"]).name for r in broken] == ["broken.png"] and broken[0]["error"]

    job_id = _run("submit", str(folder / "dark.png"), "--json").stdout.strip()
    status = _run("status", job_id)
    assert status.returncode == 0
    assert status.stdout.startswith(f"job {job_id}: done (1 files, 1 duplicate")
    engine = db.make_engine(ingest_settings.database_url)
    with db.session_scope(db.make_sessionmaker(engine)) as s:
        n_predictions = s.scalar(
            select(func.count(Prediction.id))
            .join(Page, Prediction.page_id == Page.id)
            .join(Document, Page.document_id == Document.id)
            .where(Document.filename == "dark.png")
        )
    engine.dispose()
    assert n_predictions == 1  # the same content submitted again is not classified again


@pytest.mark.slow
def test_submit_documents_json_prints_one_object_per_document_with_its_pages_and_delivered_file(
    ingest_settings: IngestSettings, docsort_worker: StartWorker, tmp_path: Path
) -> None:
    activate_tiny_model(ingest_settings)
    batch = tmp_path / "stack.pdf"
    pages = [_page(g) for g in (0, 8, 250, 255, 4)]
    pages[0].save(batch, save_all=True, append_images=pages[1:], resolution=72)
    single = tmp_path / "one.png"
    _page(0).save(single)
    docsort_worker(ingest_settings, queue=ingest_settings.job_queue)
    args = ("submit", str(batch), str(single), "--split", "class", "--wait", "--json", "--documents")
    done = _run(*args, "--timeout", "90")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(Path(r["source"]).name, r["pages"], r["label"], r["outcome"]) for r in rows] == [
        ("stack.pdf", [1, 2], "dark", "auto"),
        ("stack.pdf", [3, 4], "light", "auto"),
        ("stack.pdf", [5], "dark", "auto"),
        ("one.png", [1], "dark", "auto"),
    ]
    delivered = [Path(r["delivered"]) for r in rows]
    assert [p.suffix for p in delivered] == [".pdf", ".pdf", ".pdf", ".png"]
    assert [len(pikepdf.open(p).pages) for p in delivered[:3]] == [2, 2, 1]
    assert delivered[3].read_bytes() == single.read_bytes()  # a file that is one document: byte for byte


def test_submit_and_status_on_an_unmigrated_database_say_to_upgrade_it(
    ingest_settings: IngestSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCSORT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    (tmp_path / "a.png").write_bytes(png_bytes(1))
    for args in (("submit", str(tmp_path / "a.png")), ("status", "some-job")):
        done = _run(*args)
        assert done.returncode == 2
        assert (
            done.stderr.strip()
            .splitlines()[-1]
            .startswith("error: the database is at revision none, docsort needs ")
        )
