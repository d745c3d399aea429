"""The trainer's data: the worker's pixels for every file type, a seeded split, unreadable files skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.trainer.synthetic import make_folder, picture_like, text_like
from trainer.data import (
    class_weights,
    decode_cached,
    decode_examples,
    scan_folder,
    split_files,
)
from trainer.errors import TrainerError
from worker.imaging import PageTarget, iter_pages, prepare_pages

SIZE = (40, 48)


def _pil(rng: np.random.Generator, h: int, w: int, kind: str = "text") -> Image.Image:
    return Image.fromarray((text_like if kind == "text" else picture_like)(rng, h, w))


def write_every_file_type(folder: Path) -> dict[str, int]:
    """One file per supported type (TIFF multi-page and 16-bit, PDF of two pages); returns pages per file."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    _pil(rng, 30, 60).save(folder / "a.jpg", quality=90)
    rgba = _pil(rng, 50, 35, "picture").convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, (50, 35), dtype=np.uint8)))
    rgba.save(folder / "b.png")
    pages = [_pil(rng, 44, 33), _pil(rng, 25, 70, "picture")]
    pages[0].save(folder / "c.tif", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    deep = (rng.integers(0, 65536, (36, 52))).astype(np.uint16)
    sixteen = Image.fromarray(deep)
    assert sixteen.mode.startswith("I;16")
    sixteen.save(folder / "d16.tif")
    _pil(rng, 41, 29).save(folder / "e.bmp")
    _pil(rng, 33, 66, "picture").save(folder / "f.webp", quality=80)
    _pil(rng, 28, 40).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "g.gif")
    pdf_pages = [_pil(rng, 120, 90), _pil(rng, 90, 120, "picture")]
    pdf_pages[0].save(folder / "h.pdf", save_all=True, append_images=pdf_pages[1:], resolution=72)
    return {"a.jpg": 1, "b.png": 1, "c.tif": 2, "d16.tif": 1, "e.bmp": 1, "f.webp": 1, "g.gif": 1, "h.pdf": 2}


@pytest.mark.parametrize("policy", ["letterbox", "stretch"])
def test_pipeline_pixels_differ_from_worker_for_no_file_type(tmp_path: Path, policy: str) -> None:
    from trainer.tfsetup import import_tensorflow

    import_tensorflow()
    from trainer.pipeline import make_dataset

    expected_pages = write_every_file_type(tmp_path / "data" / "docs")
    make_folder(tmp_path / "other", per_class=1)  # a second class folder
    (tmp_path / "data" / "pictures").mkdir()
    Image.open(next((tmp_path / "other" / "picture").iterdir())).save(
        tmp_path / "data" / "pictures" / "p.png"
    )
    scan = scan_folder(tmp_path / "data")
    examples = decode_examples(scan.files, SIZE, policy, 255, progress=False)  # type: ignore[arg-type]
    expected = []
    for item in scan.files:
        pages = list(iter_pages(item.path))
        if item.path.name in expected_pages:
            assert len(pages) == expected_pages[item.path.name], item.path.name
        served = prepare_pages(item.path, PageTarget(*SIZE, policy, 255))  # type: ignore[arg-type]
        expected += [p.model_input for p in served]  # the worker's decode
    assert len(examples) == len(expected) == sum(expected_pages.values()) + 1
    for got, want, source in zip(examples.images, expected, examples.sources, strict=True):
        assert got.dtype == np.uint8 and got.shape == (*SIZE, 3)
        assert np.array_equal(got, want), f"{source}: trainer pixels differ from the worker's"
    batches = list(make_dataset(examples.images, examples.labels, 4).as_numpy_iterator())
    fed = np.concatenate([b[0] for b in batches])
    assert fed.dtype == np.float32
    assert np.array_equal(fed, np.stack(expected).astype(np.float32))
    assert np.array_equal(np.concatenate([b[1] for b in batches]), examples.labels)


def test_pages_of_a_multipage_file_are_examples_in_one_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for name in ("x", "y"):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(5):
            frames = [_pil(rng, 30, 30) for _ in range(3)]
            frames[0].save(folder / f"{i}.tif", save_all=True, append_images=frames[1:])
    scan = scan_folder(tmp_path)
    split = split_files(scan.files, 0.4, 0.0, seed=1)
    val = decode_examples(split.val, SIZE, progress=False)
    train = decode_examples(split.train, SIZE, progress=False)
    assert len(val) == 3 * len(split.val) and len(train) == 3 * len(split.train)
    assert set(val.sources).isdisjoint(train.sources)
    assert val.pages[:3] == [1, 2, 3]


def test_same_seed_gives_same_split_whatever_the_listing_order(tmp_path: Path) -> None:
    scan = scan_folder(make_folder(tmp_path, per_class=30))
    first = split_files(scan.files, 0.2, 0.1, seed=5)
    again = split_files(list(reversed(scan.files)), 0.2, 0.1, seed=5)
    other = split_files(scan.files, 0.2, 0.1, seed=6)
    assert first == again
    assert [f.path for f in first.val] != [f.path for f in other.val]
    for part, n in ((first.val, 6), (first.test, 3), (first.train, 21)):
        assert [sum(f.label == c for f in part) for c in (0, 1)] == [n, n]  # stratified
    every = [f.path for f in first.train + first.val + first.test]
    assert sorted(every) == sorted(f.path for f in scan.files)


def test_corrupt_and_foreign_files_are_listed_not_fatal(tmp_path: Path) -> None:
    make_folder(tmp_path, per_class=3)
    (tmp_path / "text" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (tmp_path / "text" / "notes.txt").write_text("not an image")
    (tmp_path / "text" / ".hidden.png").write_bytes(b"ignored")
    scan = scan_folder(tmp_path)
    examples = decode_examples(scan.files, SIZE, progress=False)
    assert len(examples) == 6
    reasons = {Path(u["path"]).name: u["reason"] for u in examples.unreadable}
    assert set(reasons) == {"broken.png", "notes.txt"}
    assert "unsupported file type" in reasons["notes.txt"]


def test_decode_cache_returns_the_same_examples_and_notices_changed_files(tmp_path: Path) -> None:
    scan = scan_folder(make_folder(tmp_path / "data", per_class=3))
    cache = tmp_path / "cache"
    first = decode_cached(scan.files, SIZE, "letterbox", 255, cache, progress=False)
    again = decode_cached(scan.files, SIZE, "letterbox", 255, cache, progress=False)
    assert len(list(cache.glob("*.npz"))) == 1
    assert np.array_equal(first.images, again.images) and again.sources == first.sources
    Image.new("RGB", (20, 20), "black").save(scan.files[0].path)
    changed = decode_cached(scan.files, SIZE, "letterbox", 255, cache, progress=False)
    assert len(list(cache.glob("*.npz"))) == 2
    assert not np.array_equal(changed.images[0], first.images[0])


def test_scan_refuses_a_folder_without_two_classes(tmp_path: Path) -> None:
    (tmp_path / "only").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "only" / "a.png")
    with pytest.raises(TrainerError, match="at least two class subfolders"):
        scan_folder(tmp_path)
    with pytest.raises(TrainerError, match="not classes of the model"):
        scan_folder(tmp_path, class_names=["a", "b"])


def test_class_weights_balance_the_loss() -> None:
    weights = class_weights(np.array([0] * 30 + [1] * 10), 2)
    assert weights[0] * 30 == pytest.approx(weights[1] * 10)
    assert weights[0] * 30 + weights[1] * 10 == pytest.approx(40)
