"""The synthetic page generator: repeatable, readable by the worker's decoder, classes that differ."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from docsort.synth import CLASSES, SynthError, SynthOptions, generate, make_page, parse_size
from worker.imaging import UnreadableImage, decode_pages

SMALL = (96, 128)


def _contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    opts = SynthOptions(per_class=3, size=SMALL, seed=11, fmt="mixed")
    generate(tmp_path / "a", opts, progress=False)
    generate(tmp_path / "b", opts, progress=False)
    generate(tmp_path / "c", SynthOptions(per_class=3, size=SMALL, seed=12, fmt="mixed"), progress=False)
    a, b, c = (_contents(tmp_path / n) for n in "abc")
    assert len(a) == 3 * len(CLASSES)
    assert a == b
    assert [a[k] for k in sorted(a)] != [c.get(k) for k in sorted(a)]


def test_a_page_does_not_change_when_more_pages_are_asked_for(tmp_path: Path) -> None:
    generate(
        tmp_path / "two", SynthOptions(per_class=2, size=SMALL, seed=5, classes=("form",)), progress=False
    )
    generate(tmp_path / "three", SynthOptions(per_class=3, size=SMALL, seed=5), progress=False)
    two, three = _contents(tmp_path / "two"), _contents(tmp_path / "three")
    assert two and all(three[name] == data for name, data in two.items())


def test_each_class_folder_holds_n_files_the_worker_decodes(tmp_path: Path) -> None:
    n = 4
    summary = generate(tmp_path, SynthOptions(per_class=n, size=SMALL, seed=3, fmt="mixed"), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(CLASSES)
    for kind in CLASSES:
        files = sorted((tmp_path / kind).iterdir())
        assert len(files) == n, kind
        for path in files:
            pages = decode_pages(path)
            assert len(pages) == 1, path
            w, h = pages[0].image.size
            assert 0.5 < max(w, h) / max(SMALL) < 4.0, (path, w, h)  # PDF pages render at 150 dpi
    assert summary.by_class == dict.fromkeys(CLASSES, n)


def test_mixed_format_exercises_several_decoders(tmp_path: Path) -> None:
    generate(tmp_path, SynthOptions(per_class=10, size=(64, 80), seed=1, fmt="mixed"), progress=False)
    suffixes = {p.suffix for p in tmp_path.rglob("*") if p.is_file()}
    assert {".jpg", ".png", ".tif", ".pdf"} <= suffixes


def _edge_density(path: Path) -> float:
    gray = np.asarray(decode_pages(path)[0].image.convert("L"))
    return float((cv2.Canny(gray, 80, 160) > 0).mean())


def test_text_and_photo_pages_differ_in_edge_density(tmp_path: Path) -> None:
    opts = SynthOptions(per_class=12, seed=2, classes=("text", "photo"), fmt="png")
    generate(tmp_path, opts, progress=False)
    text = np.array([_edge_density(p) for p in sorted((tmp_path / "text").iterdir())])
    photo = np.array([_edge_density(p) for p in sorted((tmp_path / "photo").iterdir())])
    assert text.mean() > 3 * photo.mean()
    cut = (text.mean() + photo.mean()) / 2
    correct = (text > cut).sum() + (photo <= cut).sum()
    assert correct >= 0.8 * (len(text) + len(photo))


def test_scan_defects_vary_between_pages() -> None:
    pages = [make_page(4, kind, i, SMALL) for kind in CLASSES for i in range(15)]
    assert {p.mode for p in pages} == {"rgb", "gray", "bilevel"}
    sizes = {p.image.size for p in pages}
    assert len(sizes) > 10  # sizes jitter and photos or drawings turn landscape
    assert any(w > h for w, h in sizes)


def test_unlabelled_drop_is_flat_with_labels_elsewhere_and_broken_files_fail(tmp_path: Path) -> None:
    inbox, labels = tmp_path / "inbox", tmp_path / "labels.csv"
    opts = SynthOptions(
        per_class=3, size=SMALL, seed=8, fmt="mixed", unlabelled=True, broken=3, labels_csv=labels
    )
    generate(inbox, opts, progress=False)
    files = sorted(inbox.iterdir())
    assert all(p.is_file() and not p.name.startswith(".") for p in files)
    assert len(files) == 3 * len(CLASSES) + 3
    with labels.open() as fh:
        rows = {r["file"]: r["label"] for r in csv.DictReader(fh)}
    assert set(rows) == {p.name for p in files}
    assert not any(kind in p.name for p in files for kind in CLASSES)  # names do not give classes away
    for path in files:
        if rows[path.name] == "broken":
            with pytest.raises(UnreadableImage):
                decode_pages(path)
        else:
            assert decode_pages(path), path


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"classes": ("text", "poem")}, "unknown class poem"),
        ({"per_class": 0}, "--per-class"),
        ({"size": (8, 8)}, "--size"),
        ({"fmt": "gif"}, "--format"),
    ],
)
def test_bad_options_are_refused_with_a_message(opts: dict, message: str) -> None:
    with pytest.raises(SynthError, match=message):
        SynthOptions(**opts)


def test_parse_size_rejects_words() -> None:
    assert parse_size("120x160") == (120, 160)
    assert parse_size("128") == (128, 128)
    with pytest.raises(SynthError, match="WIDTHxHEIGHT"):
        parse_size("big")


def test_cli_writes_a_labelled_set_as_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "set"
    cmd = [sys.executable, "-m", "docsort.cli", "synth", str(out), "--per-class", "2", "--size", "80x100"]
    done = subprocess.run([*cmd, "--classes", "text,form", "-q"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote 4 files" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["form", "text"]
    assert len(list((out / "text").glob("*.jpg"))) == 2


def test_cli_stops_on_a_bad_size_naming_the_option(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "docsort.cli", "synth", str(tmp_path / "x"), "--size", "wide"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--size" in done.stderr
    assert not (tmp_path / "x").exists()


def test_pages_render_with_pillows_font_where_no_system_font_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import docsort.synth_text as synth_text

    def edges(page: np.ndarray) -> float:
        return float((cv2.Canny(page, 80, 160) > 0).mean())

    with_fonts = np.asarray(make_page(6, "text", 2, (200, 256)).image.convert("L"))
    monkeypatch.setattr(synth_text, "available_fonts", lambda: ((), ()))
    without = np.asarray(make_page(6, "text", 2, (200, 256)).image.convert("L"))
    assert without.shape == with_fonts.shape
    assert edges(without) > 0.5 * edges(with_fonts) > 0.02  # lines of text, in either font
    assert not np.array_equal(without, with_fonts)  # drawn with another font
