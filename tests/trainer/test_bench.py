"""The benchmarks run end to end: head-cache reports a ratio measured in one run, guarantee a table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.bench import format_head_cache, head_cache, main


def test_head_cache_benchmark_reports_both_epochs_and_their_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["head-cache", "--backbone", "small-cnn", "--image-size", "32", "--images", "40", "--epochs", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "ratio usual / cached" in printed and "machine:" in printed
    ratio_line = printed.strip().splitlines()[-1]
    assert ratio_line.startswith("ratio: ") and float(ratio_line.split()[-1]) > 0


@pytest.mark.slow
def test_cached_head_epoch_is_faster_than_a_frozen_vgg16_epoch() -> None:
    import argparse

    args = argparse.Namespace(
        backbone="vgg16", image_size=64, images=120, epochs=2, batch_size=16, weights="none",
        data_dir=None, threads=None, seed=1,
    )  # fmt: skip
    result = head_cache(args)
    assert result["ratio"] > 1.0, format_head_cache(result)


def test_guarantee_benchmark_prints_one_row_per_target_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.tiny_model import make_tiny_model
    from trainer.bench_guarantee import RULES
    from trainer.bench_guarantee import main as guarantee_main
    from trainer.confidence import finalize_confidence

    version_dir = make_tiny_model(tmp_path)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    logits = np.zeros((2000, 2))
    logits[np.arange(2000), labels] = rng.normal(5.0, 2.0, 2000)  # mostly right, some wrong
    finalize_confidence(logits, labels, ["dark", "light"], version_dir / "report", target=0.95)
    assert guarantee_main([str(version_dir), "--splits", "3", "--targets", "0.95", "0.99"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 9")]
    assert len(rows) == 2 * len(RULES)
    guaranteed = [row for row in rows if "guaranteed (95%)" in row]
    assert len(guaranteed) == 2 and all(row.count("|") == 8 for row in rows)


def test_model_benchmark_times_decode_and_both_models_on_a4_pages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from tests.support.tiny_model import make_tiny_model
    from trainer.bench_models import A4_300_DPI, a4_text_pages
    from trainer.bench_models import main as models_main

    with Image.open(a4_text_pages(tmp_path / "a4.tif", 2)) as tiff:
        assert (tiff.size, tiff.n_frames, tiff.info["compression"]) == (A4_300_DPI, 2, "group4")
    a = make_tiny_model(tmp_path / "a", version="1")
    b = make_tiny_model(tmp_path / "b", version="2")
    assert models_main([str(a), str(b), "--pages", "2", "--batch", "8", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "| decode (worker.imaging) |" in out and "| A: tiny/1 | 8×8 |" in out and "| B: tiny/2 |" in out
    ratio = float(out.split("model B / model A time per page: ")[1].split()[0])
    assert ratio > 0
