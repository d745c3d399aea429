"""Review previews from the first decode (worker/kept.py): a page decoded whole keeps reduced pixels from
which its review image is made, the same pixels a second decode gives; a page decoded small (JPEG, PDF)
keeps none; an automatically routed page's are dropped; a job keeps at most its byte budget; the model
input never changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from docsort.synth_a4_files import A4Options, generate_a4
from review.originals import review_image
from review.settings import review_settings
from schema.manifest import InputSpec
from schema.messages import ClassifyJob, DocumentRef
from schema.tables import Page
from tests.support.jobs import run_admitted
from tests.support.worker import make_context
from worker.cam import save_image
from worker.context import JobFile, WorkerContext
from worker.decode import decode_file, decode_files
from worker.explain import explain_file
from worker.imaging import PageTarget, PreviewKeep, prepare_pages, preview_pages
from worker.infer import infer
from worker.pixels import preview_size
from worker.settings import WorkerSettings

SIDE = 1600


@pytest.fixture(scope="module")
def a4_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One A4 scan at 300 dpi in each format the scanners write."""
    root = tmp_path_factory.mktemp("a4")
    found: dict[str, Path] = {}
    for fmt in ("jpg", "png", "tif", "pdf"):
        opts = A4Options(pages=1, formats=(fmt,), classes=("text",), seed=3, workers=1, unlabelled=True)
        summary = generate_a4(root / fmt, opts, progress=False)
        found[fmt] = root / fmt / summary.files[0]["file"]
    return found


def _second_decode(path: Path, number: int, side: int) -> np.ndarray:
    return np.asarray(dict(preview_pages(path, {number}, side))[number])


def _textured(size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    big = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))[:h, :w]
    return Image.fromarray(big, "RGB").convert(mode)


@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_a_page_decoded_whole_keeps_the_pixels_of_its_review_image(
    a4_files: dict[str, Path], fmt: str
) -> None:
    path = a4_files[fmt]
    keep = PreviewKeep(SIDE, 64 << 20)
    (page,) = prepare_pages(path, PageTarget(64, 64), keep=keep)
    (bare,) = prepare_pages(path, PageTarget(64, 64))
    assert np.array_equal(page.model_input, bare.model_input), "keeping a preview changed the model input"
    assert page.kept is not None and bare.kept is None
    # reduced by a whole factor (2 for A4 at 300 dpi), no more than twice the preview along each side
    assert page.kept.pixels.nbytes == keep.used and keep.pages == 1
    assert page.kept.pixels.shape[:2] in ((1754, 1240), (1240, 1754))
    kept = np.asarray(page.kept.preview(preview_size(SIDE, page.width, page.height)))
    assert np.array_equal(kept, _second_decode(path, 1, SIDE)), "the kept preview differs from a decode"
    assert kept.shape in ((1600, 1131), (1131, 1600))  # a grey scan's preview stays grey


@pytest.mark.parametrize("fmt", ["jpg", "pdf"])
def test_a_page_decoded_small_for_the_model_keeps_nothing(a4_files: dict[str, Path], fmt: str) -> None:
    keep = PreviewKeep(SIDE, 64 << 20)
    (page,) = prepare_pages(a4_files[fmt], PageTarget(64, 64), keep=keep)
    assert page.kept is None and keep.used == 0 and keep.pages == 0


def test_turned_and_colour_pages_keep_the_pixels_a_second_decode_gives(tmp_path: Path) -> None:
    turned = tmp_path / "turned.png"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown turned a quarter clockwise
    _textured((1400, 1000), "L", 1).save(turned, exif=exif)
    colour = tmp_path / "colour.tif"
    _textured((1000, 1300), "RGB", 2).save(colour, compression="tiff_lzw")
    for path, shape in ((turned, (400, 286)), (colour, (400, 308, 3))):  # grey stays grey
        (page,) = prepare_pages(path, PageTarget(32, 32), keep=PreviewKeep(400, 64 << 20))
        assert page.kept is not None, path.name
        kept = np.asarray(page.kept.preview(preview_size(400, page.width, page.height)))
        assert kept.shape == shape
        assert np.array_equal(kept, _second_decode(path, 1, 400)), path.name


def test_a_job_keeps_previews_within_its_byte_budget(tmp_path: Path) -> None:
    path = tmp_path / "three.tif"
    pages = [_textured((800, 1000), "L", seed) for seed in range(3)]
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="tiff_lzw")
    one_page = 400 * 500  # each page reduced by 2 for a 400 px preview, 1 byte a pixel
    keep = PreviewKeep(400, 2 * one_page)
    kept = list(prepare_pages(path, PageTarget(32, 32), keep=keep))
    bare = list(prepare_pages(path, PageTarget(32, 32)))
    assert [p.kept is not None for p in kept] == [True, True, False]
    assert (keep.pages, keep.used, keep.over) == (2, 2 * one_page, 1)
    assert all(np.array_equal(a.model_input, b.model_input) for a, b in zip(kept, bare, strict=True))


def test_previews_are_made_for_review_pages_only_and_every_page_drops_its_pixels(tmp_path: Path) -> None:
    path = tmp_path / "two.tif"
    pages = [_textured((800, 1000), "L", seed) for seed in (4, 5)]
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="tiff_lzw")
    spec = PageTarget(32, 32)
    decoded = decode_file(path, spec, keep=PreviewKeep(400, 64 << 20))  # type: ignore[arg-type]
    assert all(p.kept is not None for p in decoded.pages)
    previews = decoded.kept_previews({2}, 400)  # page 1 routed automatically, page 2 to review
    assert all(p.kept is None for p in decoded.pages), "a page kept its pixels after assembly"
    preview = previews[2]()
    assert set(previews) == {2} and preview.size == (320, 400)
    assert np.array_equal(np.asarray(preview), _second_decode(path, 2, 400))


def test_explain_writes_the_given_previews_without_reading_the_file_again(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    path = tmp_path / "two.tif"
    pages = [_textured((800, 1000), "L", seed) for seed in (6, 7)]
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="tiff_lzw")
    decoded = decode_file(path, PageTarget(32, 32), keep=PreviewKeep(400, 64 << 20))  # type: ignore[arg-type]
    ready = decoded.kept_previews({1, 2}, 400)
    path.unlink()  # a second decode would find no file
    with ctx.sessions() as session:
        model = ctx.models.get(session, None)
    scores = infer(model, [decoded])[0]
    review = {n: scores[n - 1] for n in (1, 2)}
    explained = explain_file(path, "ab" * 32, review, model, tmp_path / "review", 400, ready=ready)
    assert sorted(explained) == [1, 2]
    for number, found in explained.items():
        image = np.asarray(Image.open(found.image_path))
        assert image.shape == (400, 320)  # a grey JPEG of the grey page
        same = save_image(ready[number](), tmp_path / f"ready-{number}.jpg")
        assert np.array_equal(image, np.asarray(Image.open(same))), f"page {number}"


def test_review_images_of_a_job_are_those_of_a_second_decode_within_and_past_the_budget(
    worker_settings: WorkerSettings, tmp_path: Path
) -> None:
    """Sent to review, an A4 page kept within the job's budget (3 MB: one grey A4 page, 2.2 MB) and one
    past it get the review images a second decode gives: the first from its kept pixels, by the worker;
    the second by the review server from the received file (the worker records where, decodes nothing)."""
    settings = worker_settings.model_copy(update={"confidence": 1.0, "review_keep_mb": 3})
    ctx = make_context(settings)
    path = tmp_path / "a4.tif"
    pages = [_textured((2480, 3508), "L", seed) for seed in (8, 9)]
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="tiff_lzw")
    expected = {n: np.asarray(image) for n, image in preview_pages(path, {1, 2}, settings.review_max_side)}
    outcome = run_admitted(ctx, ClassifyJob(documents=[DocumentRef(path=str(path))], on_done="keep"))
    assert outcome.review == 2
    with ctx.sessions() as session:
        stored = {p.page_number: p.image_path for p in session.scalars(select(Page))}
    ctx.sessions.kw["bind"].dispose()
    assert Path(stored[1] or "").is_file() and not Path(stored[2] or "").exists()
    made = review_image(review_settings(settings), stored[2], str(path), 2, path.name)
    assert made == Path(stored[2] or "")
    for number in (1, 2):
        saved = tmp_path / f"expected-{number}.jpg"
        save_image(Image.fromarray(expected[number]), saved)
        got = np.asarray(Image.open(stored[number] or ""))
        assert got.shape == (1600, 1131)  # a grey JPEG of the grey page
        assert np.array_equal(got, np.asarray(Image.open(saved))), f"page {number}"


def test_a_jobs_decode_threads_share_one_budget(tmp_path: Path) -> None:
    """Four grey pages decoded on four threads, a budget of two pages' kept pixels: two are kept."""
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"p{i}.png")
        _textured((800, 1000), "L", 20 + i).save(paths[-1])
    files = [JobFile(i, f"{i:064x}", p.name, p, False) for i, p in enumerate(paths)]
    keep = PreviewKeep(400, 2 * 400 * 500)
    decoded, failures = decode_files(files, InputSpec(height=32, width=32), None, threads=4, keep=keep)
    assert not failures and len(decoded) == 4
    assert sum(1 for _, d in decoded for p in d.pages if p.kept is not None) == keep.pages == 2
    assert keep.used == 2 * 400 * 500 and keep.over == 2


def test_grey_jpeg_and_pdf_pages_get_grey_previews_and_colour_ones_colour(tmp_path: Path) -> None:
    grey, colour = _textured((1000, 1400), "L", 11), _textured((1000, 1400), "RGB", 12)
    grey.save(tmp_path / "grey.jpg", quality=90)
    grey.save(tmp_path / "grey.pdf", "PDF", resolution=150)  # one DeviceGray JPEG filling the page
    colour.save(tmp_path / "colour.jpg", quality=90)
    colour.save(tmp_path / "colour.pdf", "PDF", resolution=150)
    for name, mode in [("grey.jpg", "L"), ("grey.pdf", "L"), ("colour.jpg", "RGB"), ("colour.pdf", "RGB")]:
        ((_, preview),) = preview_pages(tmp_path / name, {1}, 400)
        assert (preview.mode, preview.size) == (mode, (286, 400)), name
        saved = save_image(preview, tmp_path / f"{name}.review.jpg")
        with Image.open(saved) as written:
            assert written.mode == mode, name
