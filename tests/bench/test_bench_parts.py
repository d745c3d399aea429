"""The pieces the benchmarks stand on: FLOP counting, the peak estimate, the docs table writer, A4 pages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from docsort.bench.a4 import a4_folder
from docsort.bench.bare import BarePool
from docsort.bench.common import BenchError
from docsort.bench.docs import Section, existing_rows, num, plain, record
from docsort.bench.flops import count_flops
from docsort.bench.machine import Machine
from tests.support.tiny_model import make_tiny_model


def test_flop_count_of_tiny_graph_matches_its_layers_by_hand(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path, size=(32, 32))
    conv = 2 * (2 * 32 * 32) * (3 * 1 * 1)  # 1x1 conv, 3 -> 2 channels, at 32x32
    cam = 2 * (8 * 8 * 2) * 2  # (8x8x2) @ (2x2)
    dense = 2 * 2 * 2  # (1x2) @ (2x2)
    assert count_flops(folder / "model.onnx") == conv + cam + dense
    bigger = make_tiny_model(tmp_path / "b", size=(64, 64))
    assert count_flops(bigger / "model.onnx") == 4 * conv + 4 * cam + dense


@pytest.mark.parametrize(
    ("flags", "per_cycle"),
    [({"avx512f", "fma", "avx2", "avx"}, 64), ({"avx2", "fma", "avx"}, 32), ({"avx"}, 16), ({"sse2"}, 8)],
)
def test_peak_rate_follows_the_widest_simd_with_fma(flags: set[str], per_cycle: int) -> None:
    machine = Machine("cpu", 4, 2500.0, frozenset(flags), 8.0, (0.1, 0.2, 0.3))
    assert machine.fp32_flops_per_cycle == per_cycle
    assert machine.peak_gflops() == pytest.approx(4 * 2.5 * per_cycle)
    assert machine.peak_gflops(cores=1) == pytest.approx(2.5 * per_cycle)
    assert f"peak {4 * 2.5 * per_cycle:.0f} GFLOP/s" in machine.describe()


SECTION = Section(
    name="demo",
    title="## Demo",
    intro="How it is measured.",
    columns=[("size", plain("size")), ("rate", num("rate", 1))],
    key=("size",),
)


def test_docs_table_replaces_the_run_with_the_same_key_and_leaves_other_sections_alone(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Training (another section)\n\nTheir text -- kept.\n")
    machine = Machine("cpu", 2, 2000.0, frozenset({"avx"}), 4.0, (0.5, 0.4, 0.3))
    record(SECTION, {"size": 32, "rate": 10.0}, machine, "docsort bench demo --size 32", doc)
    record(SECTION, {"size": 64, "rate": 5.0}, machine, "docsort bench demo --size 64", doc)
    record(SECTION, {"size": 32, "rate": 12.5}, machine, "docsort bench demo --size 32 --write-docs", doc)
    text = doc.read_text()
    assert "Their text -- kept." in text and text.count("## Training") == 1
    assert text.count("<!-- docsort-bench:demo:begin -->") == 1
    assert "| 32 | 12.5 | 0.50 / 0.40 / 0.30 → " in text and "| 32 | 10.0 |" not in text
    assert "| 64 | 5.0 |" in text
    assert "`docsort bench demo --size 32 --write-docs`" in text
    rows = existing_rows(text, SECTION)
    assert [r["result"]["size"] for r in rows] == [32, 64]
    comment = text[text.index("<!-- docsort-bench:demo:data") : text.index("<!-- docsort-bench:demo:end")]
    assert "--" not in comment[4:-4].replace("<!--", "").replace("-->", ""), "a comment may not hold --"
    assert json.loads(json.dumps(rows))[0]["command"].endswith("--write-docs")


def test_a4_pages_for_the_benchmarks_are_made_once_and_reused(tmp_path: Path) -> None:
    folder = a4_folder(4, seed=3, root=tmp_path)
    files = sorted(p for p in folder.rglob("*") if p.suffix in {".jpg", ".tif", ".png", ".pdf"})
    assert len(files) == 4 and (folder / "truth.json").is_file()
    stamps = [p.stat().st_mtime_ns for p in files]
    assert a4_folder(4, seed=3, root=tmp_path) == folder
    assert [p.stat().st_mtime_ns for p in files] == stamps  # reused, not drawn again
    assert not list(tmp_path.glob(".*part"))


def test_bare_pool_runs_every_page_once_a_round_split_between_its_processes(tmp_path: Path) -> None:
    version = make_tiny_model(tmp_path / "models")
    pages = np.full((5, 32, 32, 3), 255, dtype=np.uint8)
    with BarePool(version, pages, processes=2, threads=1) as pool:
        assert pool.shares == [3, 2]
        assert [pool.round(), pool.round()] == [5, 5]
    with pytest.raises(BenchError, match="6 processes"):
        BarePool(version, pages, processes=6, threads=1)
    with pytest.raises(BenchError, match="cannot load the model"):
        BarePool(tmp_path / "no-such-version", pages, processes=1, threads=1)
