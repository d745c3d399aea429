"""``docsort bench separate`` on a tiny configuration: its JSON object and its block of the docs file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_separate_measures_each_rule_and_records_its_block(tmp_path: Path) -> None:
    docs = tmp_path / "documents.md"
    docs.write_text("# Documents\n\nText before.\n\n<!-- docsort-bench:separate:begin -->\nold\n"
                    "<!-- docsort-bench:separate:end -->\n\nText after.\n", encoding="utf-8")  # fmt: skip
    args = ["--files", "30", "--image-files", "1", "--lambdas", "0,2", "--classes", "4", "--write-docs"]
    proc = subprocess.run(
        [sys.executable, "-m", "docsort.cli", "bench", "separate", *args, "--docs", str(docs), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    plain, odd = result["class_rule"]
    assert (plain["classes"], plain["odd_share"], odd["odd_share"]) == (4, 0.0, 0.03)
    assert [r["lambda"] for r in plain["rows"]] == [0.0, 1.5, 2.0]  # the default (ln 4.5) joins the list
    assert all(0.0 < r["exact"] <= 1.0 for r in plain["rows"] + odd["rows"])
    assert 0.9 < plain["page_accuracy"] < 1.0
    blank, barcode = result["images"]
    assert (blank["rule"], barcode["rule"]) == ("blank", "barcode")
    for rule in (blank, barcode):
        assert rule["sheets"] > 0 and 0 <= rule["sheets_found"] <= rule["sheets"]
        assert rule["content_pages"] > 0 and rule["marks_ms_per_page"] > 0
    text = docs.read_text(encoding="utf-8")
    assert text.startswith("# Documents\n\nText before.") and text.endswith("Text after.\n")
    assert text.count("docsort-bench:separate:begin") == 1 and "\nold\n" not in text
    assert "| 1.5 (default for 4 classes) |" in text
    assert "bench separate --files 30 --image-files 1" in text  # the command to rerun
