"""The head-cache benchmark runs end to end and reports a ratio measured in one run."""

from __future__ import annotations

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
