"""The A4 scan generator: real page sizes and formats, batches whose ground truth matches their pages,
separator codes a barcode reader reads back, the same bytes for a seed whatever the number of workers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp
from PIL import Image

from docsort.synth import SynthError
from docsort.synth_a4 import a4_page, a4_size, blank_page
from docsort.synth_a4_files import A4Options, generate_a4
from worker.imaging import iter_pages, prepare_pages
from worker.pixels import PageTarget

A4 = (2480, 3508)


def _contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a4_at_300_dpi_is_2480_by_3508() -> None:
    assert a4_size(300) == A4
    assert a4_size(300, landscape=True) == A4[::-1]
    assert a4_size(150) == (1240, 1754)


def test_each_format_is_the_kind_of_file_scanners_write_at_full_size(tmp_path: Path) -> None:
    opts = A4Options(pages=8, seed=4, formats=("jpg", "tif", "png", "pdf"), workers=1)
    summary = generate_a4(tmp_path / "set", opts, progress=False)
    seen = set()
    for entry in summary.files:
        path = tmp_path / "set" / entry["file"]
        assert path.parent.name == entry["documents"][0]["class"]  # labelled: class folders
        (page,) = prepare_pages(path, PageTarget(64, 64))
        assert (page.width, page.height) in {A4, A4[::-1]}, entry  # a PDF's too: its scan's resolution
        if entry["format"] != "pdf":
            with Image.open(path) as img:
                assert img.size in {A4, A4[::-1]}, entry
                expected = {"jpg": ("JPEG", "RGB"), "png": ("PNG", "L"), "tif": ("TIFF", "1")}
                assert (img.format, img.mode) == expected[entry["format"]], entry
                if entry["format"] == "tif":
                    assert img.info["compression"] == "group4"
        seen.add(entry["format"])
    assert seen == {"jpg", "tif", "png", "pdf"}
    assert summary.pages == 8
    truth = json.loads((tmp_path / "set" / "truth.json").read_text())
    assert [f["file"] for f in truth["files"]] == [f["file"] for f in summary.files]


def test_batches_hold_documents_and_separators_as_their_ground_truth_says(tmp_path: Path) -> None:
    out = tmp_path / "inbox"
    opts = A4Options(pages=0, batches=2, batch_documents=(3, 3), separator="qr", unlabelled=True, seed=2)
    summary = generate_a4(out, opts, progress=False)
    truth = json.loads(summary.truth_path.read_text())
    assert summary.truth_path.parent == tmp_path  # beside the inbox, not in it
    assert {f["format"] for f in truth["files"]} <= {"pdf", "tif"}
    for entry in truth["files"]:
        pages = list(iter_pages(out / entry["file"]))
        assert len(pages) == entry["pages"]
        assert len(entry["documents"]) == 3 and len(entry["separators"]) == 2
        numbers = sorted(
            [n for d in entry["documents"] for n in d["pages"]] + [s["page"] for s in entry["separators"]]
        )
        assert numbers == list(range(1, entry["pages"] + 1))  # every page is a document's or a separator
        assert all(1 <= len(d["pages"]) <= 4 for d in entry["documents"])
        for sep in entry["separators"]:
            found = zxingcpp.read_barcodes(pages[sep["page"] - 1].image)
            assert [r.text for r in found] == [sep["code"]], (entry["file"], sep)
        for doc in entry["documents"]:
            assert not zxingcpp.read_barcodes(pages[doc["pages"][0] - 1].image)


@pytest.mark.parametrize("fmt", ["pdf", "tif"])
def test_code128_separators_read_back_from_each_batch_format(tmp_path: Path, fmt: str) -> None:
    opts = A4Options(
        pages=0, batches=1, batch_documents=(2, 2), separator="code128", batch_formats=(fmt,), unlabelled=True
    )
    summary = generate_a4(tmp_path / "in", opts, progress=False)
    (entry,) = summary.files
    (sep,) = entry["separators"]
    page = list(iter_pages(tmp_path / "in" / entry["file"]))[sep["page"] - 1]
    (code,) = zxingcpp.read_barcodes(page.image)
    assert code.text == sep["code"] and code.format == zxingcpp.BarcodeFormat.Code128


def test_blank_separators_are_listed_as_blank_pages(tmp_path: Path) -> None:
    opts = A4Options(
        pages=0, batches=1, batch_documents=(3, 3), separator="blank", unlabelled=True, dpi=100, seed=9
    )
    (entry,) = generate_a4(tmp_path / "in", opts, progress=False).files
    assert len(entry["blank_pages"]) == 2 and entry["separators"] == []
    documents = [n for d in entry["documents"] for n in d["pages"]]
    assert sorted(documents + entry["blank_pages"]) == list(range(1, entry["pages"] + 1))


def _ink(pixels: np.ndarray) -> float:
    grey = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    return float((cv2.Canny(grey, 80, 160) > 0).mean())


def test_blank_pages_are_paper_with_far_less_ink_than_a_text_page() -> None:
    blanks = [blank_page(1, i, dpi=150).pixels for i in range(3)]
    text = a4_page(1, "text", 1, dpi=150).pixels
    assert all(b.shape == (1754, 1240) for b in blanks)
    assert all(170 < float(b.mean()) < 255 for b in blanks)
    assert max(_ink(b) for b in blanks) < 0.25 * _ink(text)
    assert len({round(float(b.mean()), 1) for b in blanks}) == 3  # paper and light differ per sheet


def test_same_seed_gives_the_same_bytes_with_one_or_two_workers(tmp_path: Path) -> None:
    base = {"pages": 6, "batches": 1, "batch_documents": (2, 2), "unlabelled": True, "dpi": 75, "seed": 6}
    generate_a4(tmp_path / "a", A4Options(**base, workers=1), progress=False)  # type: ignore[arg-type]
    generate_a4(tmp_path / "b", A4Options(**base, workers=2), progress=False)  # type: ignore[arg-type]
    other = {**base, "seed": 7}
    generate_a4(tmp_path / "c", A4Options(**other, workers=1), progress=False)  # type: ignore[arg-type]
    a, b, c = (_contents(tmp_path / n) for n in "abc")
    assert len(a) == 7 and a == b
    assert a != c
    assert (tmp_path / "a-truth.json").read_text() == (tmp_path / "b-truth.json").read_text()


def test_multi_page_documents_are_tiffs_or_pdfs_that_the_worker_decodes(tmp_path: Path) -> None:
    opts = A4Options(pages=10, multi_page=1.0, dpi=100, seed=3, workers=1)
    summary = generate_a4(tmp_path, opts, progress=False)
    assert summary.pages == 10 and all(f["format"] in ("tif", "pdf") for f in summary.files)
    assert any(f["pages"] > 1 for f in summary.files)
    for entry in summary.files:
        prepared = list(prepare_pages(tmp_path / entry["file"], PageTarget(64, 64)))
        assert len(prepared) == entry["pages"] == len(entry["documents"][0]["pages"])


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"pages": 0}, "nothing to write"),
        ({"formats": ("gif",)}, "formats"),
        ({"separator": "datamatrix"}, "--separator"),
        ({"batches": 1}, "--unlabelled"),
        ({"dpi": 20}, "--dpi"),
        ({"classes": ("poem",)}, "classes"),
    ],
)
def test_bad_a4_options_are_refused_with_a_message(opts: dict, message: str) -> None:
    with pytest.raises(SynthError, match=message):
        A4Options(**opts)


def test_cli_writes_an_a4_drop_with_its_truth_as_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "drop"
    cmd = [sys.executable, "-m", "docsort.cli", "synth", str(out), "--a4", "--pages", "3", "--dpi", "100"]
    cmd += ["--batches", "1", "--batch-documents", "2-2", "--unlabelled", "--workers", "1", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote 4 files" in done.stdout
    truth = json.loads((tmp_path / "drop-truth.json").read_text())
    assert sorted(f["file"] for f in truth["files"]) == sorted(p.name for p in out.iterdir())
