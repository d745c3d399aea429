"""``docsort bench assemble``: how a file is cut into documents, and the command on a short batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from docsort.bench.assemble import documents
from tests.bench.test_bench_commands import bench, positive


def test_a_file_is_cut_into_documents_of_one_to_four_pages_in_order() -> None:
    assert documents(4) == [[1], [2, 3], [4]]
    cut = documents(30)
    assert [len(d) for d in cut] == [1, 2, 3, 4] * 3
    assert [n for d in cut for n in d] == list(range(1, 31))


@pytest.mark.slow
def test_bench_assemble_times_lossless_documents_against_png_pages(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    result, out = bench(
        "assemble", "--pages", "4", "--distinct", "1", "--rounds", "1", "--write-docs", "--docs", str(docs)
    )
    for kind in ("pdf", "tiff"):
        positive(result, *(f"{kind}_{way}_ms_per_page" for way in ("lossless", "png", "copy")))
        assert result[f"{kind}_png_vs_lossless"] == pytest.approx(
            result[f"{kind}_png_ms_per_page"] / result[f"{kind}_lossless_ms_per_page"]
        )
        assert result[f"{kind}_copy_bytes_per_page"] == result[f"{kind}_source_bytes_per_page"]
        # the documents hold the source's encoded pages: a few hundred bytes of structure beside them
        source = result[f"{kind}_source_bytes_per_page"]
        assert source * 0.98 < result[f"{kind}_lossless_bytes_per_page"] < source * 1.02 + 2000
    assert "G4 TIFF: lossless" in out
    assert "<!-- docsort-bench:assemble:begin -->" in docs.read_text()
