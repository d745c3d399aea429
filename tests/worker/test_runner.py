"""The job runner against a real database, with no broker."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import redis
import tifffile
from celery import Celery
from PIL import Image
from sqlalchemy import func, select

from schema.enums import DecisionKind, DocumentState
from schema.messages import ROUTED_TASK, ClassifyJob, DocumentRef
from schema.tables import Document, OutputDocument, Page, Prediction, RoutingDecision
from tests.support.jobs import admitted, run_admitted
from tests.support.worker import make_context, write_page
from worker.context import WorkerContext
from worker.delivery import celery_queue_sender
from worker.runner import run_job
from worker.settings import WorkerSettings


def _job(*paths: Path, on_done: str = "keep") -> ClassifyJob:
    return ClassifyJob(documents=[DocumentRef(path=str(p)) for p in paths], on_done=on_done)  # type: ignore[arg-type]


def _count(ctx: WorkerContext, model: type) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_pages_become_rows_and_routed_files(ctx: WorkerContext, tmp_path: Path) -> None:
    dark = write_page(tmp_path / "dark.png", 0)
    light = write_page(tmp_path / "light.jpg", 255)
    outcome = run_admitted(ctx, _job(dark, light))
    assert (outcome.pages, outcome.auto, outcome.review, outcome.failed) == (2, 2, 0, 0)
    outbox = ctx.settings.outbox_dir
    assert outbox is not None
    routed = sorted(p.relative_to(outbox).parts[0] for p in outbox.rglob("*") if p.is_file())
    assert routed == ["dark", "light"]
    with ctx.sessions() as s:
        decisions = s.scalars(select(RoutingDecision)).all()
        assert {d.kind for d in decisions} == {DecisionKind.auto}
        assert all(d.applied_at is not None and Path(d.destination or "").is_file() for d in decisions)
        assert {d.state for d in s.scalars(select(Document))} == {DocumentState.done}


def test_review_page_gets_a_jpeg_image_and_its_cam_cell_votes(ctx: WorkerContext, tmp_path: Path) -> None:
    grey = write_page(tmp_path / "grey.png", 128, size=(400, 300))
    outcome = run_admitted(ctx, _job(grey))
    assert outcome.review == 1
    with ctx.sessions() as s:
        page = s.scalars(select(Page)).one()
        decision = s.scalars(select(RoutingDecision)).one()
    assert decision.kind == DecisionKind.review and decision.cam_path
    assert (page.image_path or "").endswith(".jpg") and decision.cam_path.endswith("-cam.json")
    plain = np.asarray(Image.open(page.image_path or ""))
    assert plain.shape == (300, 400, 3) and np.abs(plain.astype(int) - 128).mean() < 2
    with ctx.sessions() as s:
        names = ctx.models.get(s, None).manifest.class_names
    cells = json.loads(Path(decision.cam_path).read_text())  # every class's votes, drawn by the browser
    assert cells["format"] == 1 and sorted(cells["votes"]) == sorted(names)
    assert all(len(cells["votes"][name]) == cells["rows"] for name in names)
    assert not list(Path(decision.cam_path).parent.glob("*.png"))  # no heat map image any more


def test_running_a_job_twice_records_and_routes_once(ctx: WorkerContext, tmp_path: Path) -> None:
    pages = [write_page(tmp_path / f"p{i}.png", g) for i, g in enumerate((0, 255, 128))]
    run_admitted(ctx, _job(*pages))
    counts = [_count(ctx, m) for m in (Document, Page, Prediction, RoutingDecision)]
    again = run_admitted(ctx, _job(*pages))
    assert again.already_done == 3 and again.pages == 0
    assert [_count(ctx, m) for m in (Document, Page, Prediction, RoutingDecision)] == counts == [3, 3, 3, 3]
    outbox = ctx.settings.outbox_dir
    assert outbox is not None
    assert len([p for p in outbox.rglob("*") if p.is_file()]) == 2


def test_queue_destination_sends_a_json_task_with_a_lasting_path(
    worker_settings: WorkerSettings, redis_url: str, unique_queue: str, tmp_path: Path
) -> None:
    rules = tmp_path / "routes.yaml"
    rules.write_text(f"classes:\n  dark: {{queue: {unique_queue}}}\n")
    ws = worker_settings.model_copy(update={"routes_file": rules, "broker_url": redis_url})
    ctx = make_context(ws)
    ctx.sender = celery_queue_sender(Celery(broker=redis_url, set_as_current=False).send_task)
    client = redis.Redis.from_url(redis_url)
    try:
        run_admitted(ctx, _job(write_page(tmp_path / "dark.png", 0), on_done="delete"))
        (raw,) = client.lrange(unique_queue, 0, -1)
    finally:
        client.delete(unique_queue)
    message = json.loads(raw)
    assert message["content-type"] == "application/json"
    assert message["headers"]["task"] == ROUTED_TASK
    _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert kwargs["label"] == "dark" and kwargs["pages"] == [1] and kwargs["index"] == 1
    lasting = Path(kwargs["path"])
    assert lasting.is_file() and "_queue" in lasting.parts  # the original was deleted; this copy stays
    assert (tmp_path / "dark.png").exists()  # the file named is never deleted: docsort deleted its copy
    assert not any(p.is_file() for p in (ctx.settings.processing_dir / "celery").rglob("*"))


def test_a_multi_page_file_is_one_document_delivered_byte_for_byte(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    dark = [Image.new("RGB", (60, 80), (v, v, v)) for v in (0, 8)]
    dark[0].save(tmp_path / "two.tif", save_all=True, append_images=dark[1:])
    outcome = run_admitted(ctx, _job(tmp_path / "two.tif"))
    assert (outcome.pages, outcome.auto, outcome.review) == (2, 2, 0)
    (delivered,) = [p for p in ctx.settings.outbox_dir.rglob("*") if p.is_file()]
    assert delivered.read_bytes() == (tmp_path / "two.tif").read_bytes() and "dark" in delivered.parts
    with ctx.sessions() as s:
        (document,) = s.scalars(select(OutputDocument)).all()
        assert (document.pages, document.kind, document.label) == ([1, 2], DecisionKind.auto, "dark")
        assert document.destination == str(delivered) and document.delivered_at is not None


def test_every_page_of_a_document_under_review_gets_its_review_image(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    pages = [Image.new("RGB", (60, 80), (v, v, v)) for v in (0, 128, 255)]
    pages[0].save(tmp_path / "three.tif", save_all=True, append_images=pages[1:])
    outcome = run_admitted(ctx, _job(tmp_path / "three.tif"))
    assert (outcome.auto, outcome.review) == (0, 3)  # one document; its mean vector is unsure
    with ctx.sessions() as s:
        rows = s.scalars(select(Page).order_by(Page.page_number)).all()
        assert all(p.image_path and Image.open(p.image_path).size == (60, 80) for p in rows)
        (document,) = s.scalars(select(OutputDocument)).all()
        assert document.kind == DecisionKind.review and document.delivered_at is None
    assert not [p for p in ctx.settings.outbox_dir.rglob("*") if p.is_file()]  # nothing delivered yet


def test_a_batch_is_separated_by_class_and_each_document_delivered_lossless(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    levels = (0, 4, 250, 255, 2)  # dark, dark, light, light, dark
    pages = [Image.new("L", (60, 80), v).convert("1") for v in levels]
    pages[0].save(tmp_path / "batch.tif", save_all=True, append_images=pages[1:], compression="group4")
    job = ClassifyJob(documents=[DocumentRef(path=str(tmp_path / "batch.tif"))], split="class")
    outcome = run_admitted(ctx, job)
    assert (outcome.pages, outcome.auto) == (5, 5)
    with ctx.sessions() as s:
        documents = s.scalars(select(OutputDocument).order_by(OutputDocument.seq)).all()
        assert [(d.pages, d.label) for d in documents] == [([1, 2], "dark"), ([3, 4], "light"), ([5], "dark")]
        delivered = [Path(d.destination or "") for d in documents]
    for document, path in zip(documents, delivered, strict=True):
        with Image.open(path) as out:
            assert out.n_frames == len(document.pages) and out.info.get("compression") == "group4"
            for i, number in enumerate(document.pages):
                out.seek(i)
                assert out.tobytes() == pages[number - 1].tobytes()


def _g4_tiff(path: Path, levels: tuple[int, ...]) -> list[Image.Image]:
    pages = [Image.new("L", (64, 80), v).convert("1") for v in levels]
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="group4")
    return pages


def test_an_unreadable_page_sends_its_document_to_review_and_the_others_are_delivered(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    path = tmp_path / "batch.tif"
    _g4_tiff(path, (0, 0, 255))
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[1].tags["StripOffsets"]
        assert tag.count == 1 and tif.byteorder == "<"
        where = tag.valueoffset  # one strip: its offset is stored in the tag itself
    data = bytearray(path.read_bytes())
    data[where : where + 4] = (len(data) + 10_000).to_bytes(4, "little")  # page 2's data lies past the end
    path.write_bytes(bytes(data))
    job = ClassifyJob(documents=[DocumentRef(path=str(path))], split="pages:1")
    run_admitted(ctx, job)
    with ctx.sessions() as s:
        docs = s.scalars(select(OutputDocument).order_by(OutputDocument.seq)).all()
        assert [(d.pages, d.kind) for d in docs] == [
            ([1], DecisionKind.auto),
            ([2], DecisionKind.review),
            ([3], DecisionKind.auto),
        ]
        assert "page 2" in (docs[1].reason or "")
        failed = s.scalars(select(RoutingDecision).where(RoutingDecision.kind == DecisionKind.failed)).one()
        assert failed.page_id is not None and "page 2" in (failed.reason or "")
        assert (s.scalars(select(Document)).one().state) == DocumentState.done
    assert len([p for p in ctx.settings.outbox_dir.rglob("*") if p.is_file()]) == 2


def test_a_file_of_blank_pages_only_fails_with_its_reason(ctx: WorkerContext, tmp_path: Path) -> None:
    path = tmp_path / "blank.tif"
    _g4_tiff(path, (255, 255))
    run_admitted(ctx, ClassifyJob(documents=[DocumentRef(path=str(path))], split="blank"))
    with ctx.sessions() as s:
        document = s.scalars(select(Document)).one()
        assert document.state == DocumentState.failed and "blank" in (document.error or "")
        (only,) = s.scalars(select(OutputDocument)).all()
        assert only.kind == DecisionKind.failed and only.pages == []
    assert (ctx.settings.error_dir / f"blank-{document.sha256[:10]}.tif").is_file()


def test_a_redelivered_batch_makes_no_second_document_and_delivers_nothing_twice(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    path = tmp_path / "batch.tif"
    _g4_tiff(path, (0, 0, 255, 255))
    job = admitted(
        ctx.sessions, ClassifyJob(documents=[DocumentRef(path=str(path))], split="class"), ctx.settings
    )
    run_job(ctx, job)
    with ctx.sessions() as s:
        first = [(d.id, d.pages, d.delivered_at) for d in s.scalars(select(OutputDocument))]
    files = sorted(p for p in ctx.settings.outbox_dir.rglob("*") if p.is_file())
    again = run_job(ctx, job)
    assert again.already_done == 1
    with ctx.sessions() as s:
        assert [(d.id, d.pages, d.delivered_at) for d in s.scalars(select(OutputDocument))] == first
    assert sorted(p for p in ctx.settings.outbox_dir.rglob("*") if p.is_file()) == files and len(files) == 2
