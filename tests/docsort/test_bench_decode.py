"""The decode benchmark runs each mode on the same files and counts every page (its speed is printed,
never asserted)."""

from __future__ import annotations

from pathlib import Path

from docsort.bench_decode import report, run_mode
from docsort.synth_a4_files import A4Options, generate_a4


def test_every_mode_decodes_every_page_and_the_report_compares_them(tmp_path: Path) -> None:
    opts = A4Options(pages=4, multi_page=0.5, dpi=100, unlabelled=True, workers=1, seed=1)
    made = generate_a4(tmp_path / "a4", opts, progress=False)
    results = [run_mode(mode, tmp_path / "a4", 32) for mode in ("whole", "reduced", "reduced+preview")]
    assert all(r["pages"] == made.pages == 4 for r in results)
    assert all(sum(v[0] for v in r["per_format"].values()) == 4 for r in results)
    text = report(results)
    assert text.splitlines()[0].split()[:2] == ["mode", "pages/s"]
    assert "reduced / whole:" in text
