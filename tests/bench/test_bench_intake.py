"""``docsort bench intake`` on a small folder, comparing this checkout with itself: both rows come back
with their figures, and the watcher's statements and commits per file are those of one batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.test_bench_commands import ROOT, bench, labelled_pages


def test_bench_intake_measures_this_checkout_against_another(tmp_path: Path) -> None:
    pages = labelled_pages(tmp_path / "pages")  # 24 files
    result, out = bench(
        "intake", "--data", str(pages), "--files", "20", "--rounds", "1", "--compare", str(ROOT)
    )
    rows = result["runs"]
    assert [r["database"] for r in rows] == ["sqlite", "sqlite"] and all(r["files"] == 20 for r in rows)
    assert rows[1]["code"].endswith("(compared)") and rows[1]["speedup"] == pytest.approx(1.0)
    for row in rows:
        assert row["files_per_s"] > 0 and row["cpu_ms_per_file"] > 0
        assert row["commits_per_50"] == pytest.approx(50 * 2 / 20)  # one record and one sent mark
        assert row["statements_per_file"] <= 10 / 20
    assert "files/s" in out
