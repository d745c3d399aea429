"""Each ``docsort bench`` command runs on a tiny configuration and ends with its JSON object.

The commands run as the real CLI in a subprocess (TensorFlow and worker processes stay out of the test
process), on the tiny test model and pages the tests make; the numbers are checked for sense, not value.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.support.tiny_model import make_tiny_model

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str, timeout: float = 300) -> tuple[dict[str, Any], str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("DOCSORT_") or k.startswith("DOCSORT_TEST_")
    }
    env["DOCSORT_BROKER_URL"] = os.environ.get("DOCSORT_TEST_REDIS", "redis://127.0.0.1:6379/0")
    proc = subprocess.run(
        [sys.executable, "-m", "docsort.cli", "bench", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, (
        f"docsort bench {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


def labelled_pages(folder: Path, per_class: int = 12) -> Path:
    """dark/ and light/ pages for the tiny model (black-ish: dark, white-ish: light)."""
    rng = np.random.default_rng(3)
    for cls, low, high in (("dark", 0, 90), ("light", 165, 256)):
        (folder / cls).mkdir(parents=True)
        for i in range(per_class):
            page = np.clip(rng.normal(int(rng.integers(low, high)), 3.0, (80, 60, 3)), 0, 255).astype(
                np.uint8
            )
            Image.fromarray(page).save(folder / cls / f"{cls}{i:02d}.png")
    return folder


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    version = make_tiny_model(tmp_path / "models")
    return version, labelled_pages(tmp_path / "pages")


def positive(result: dict[str, Any], *keys: str) -> None:
    for key in keys:
        assert isinstance(result[key], float) and math.isfinite(result[key]) and result[key] > 0, (
            key,
            result,
        )


@pytest.mark.slow
def test_bench_inference_prints_rates_of_the_three_engines_and_their_ratios(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    result, out = bench(
        "inference", "--backbone", "small-cnn", "--image-size", "32", "--batch", "2", "--rounds", "2",
        "--write-docs", "--docs", str(docs),
    )  # fmt: skip
    positive(result, "ort_images_per_s", "keras_predict_images_per_s", "keras_call_images_per_s")
    assert result["ort_vs_keras_predict"] == pytest.approx(
        result["ort_images_per_s"] / result["keras_predict_images_per_s"]
    )
    assert 0 < result["ort_share_of_peak"] < 1 and result["gflops_per_image"] > 0
    assert result["max_abs_probs_diff"] < 1e-4  # the same model, three ways
    assert "ratio ONNX Runtime / Keras predict" in out
    assert "| small-cnn | 32 | 2 | cpu fp32 |" in docs.read_text()


def test_bench_int8_compares_speed_and_labels_on_held_out_pages(tiny: tuple[Path, Path]) -> None:
    version, pages = tiny
    before = (version / "manifest.json").read_bytes()
    result, _ = bench(
        "int8", "--model", str(version), "--data", str(pages), "--batch", "4", "--rounds", "2",
        "--calib-images", "8",
    )  # fmt: skip
    positive(result, "fp32_images_per_s", "int8_images_per_s")
    assert result["label_agreement"] == 1.0 and result["n_heldout"] >= 4  # the pages are far from 0.5
    assert result["speedup"] == pytest.approx(result["int8_images_per_s"] / result["fp32_images_per_s"])
    assert (version / "manifest.json").read_bytes() == before and not (version / "model.int8.onnx").exists()


def test_bench_cam_times_review_and_auto_paths_on_the_same_pages(tiny: tuple[Path, Path]) -> None:
    version, pages = tiny
    result, _ = bench("cam", "--model", str(version), "--data", str(pages), "--pages", "8", "--rounds", "1")
    positive(result, "auto_ms_per_page", "review_ms_per_page")
    assert result["pages"] == 8
    assert result["review_extra_ms_per_page"] == pytest.approx(
        result["review_ms_per_page"] - result["auto_ms_per_page"]
    )
    # one job of 8 pages: its commits are the commits per page times 8 (and few: one step, one commit)
    assert result["auto_commits_per_job"] == pytest.approx(8 * result["auto_commits_per_page"])
    assert 0 < result["review_commits_per_job"] < 8


def test_bench_pages_come_from_data_or_a4_not_both(tiny: tuple[Path, Path]) -> None:
    version, pages = tiny
    proc = subprocess.run(
        [sys.executable, "-m", "docsort.cli", "bench", "cam", "--model", str(version), "--data", str(pages),
         "--a4"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode != 0 and "give --data DIR or --a4" in proc.stderr


def test_bench_pipeline_runs_watch_folder_to_routed_files_and_bare_model(tiny: tuple[Path, Path]) -> None:
    version, pages = tiny
    result, _ = bench("pipeline", "--model", str(version), "--data", str(pages), "--pages", "10")
    positive(result, "pipeline_pages_per_s", "ort_pages_per_s", "decode_pages_per_s")
    positive(result, "ort_cpu_ms_per_page", "cpu_model_share", "pipeline_cores_used", "ort_cores_used")
    assert result["cpu_model_share"] < 1  # the model alone spends less CPU a page than the pipeline
    assert result["pages"] == 10 and result["outcomes"].endswith("/ 0")  # none failed
    assert result["ort_pages_per_s"] > result["pipeline_pages_per_s"]  # the model alone is faster


@pytest.mark.slow
def test_bench_scale_runs_one_and_two_worker_processes(tiny: tuple[Path, Path]) -> None:
    version, pages = tiny
    result, _ = bench(
        "scale", "--model", str(version), "--data", str(pages), "--pages", "12", "--rounds", "1"
    )
    positive(result, "one_process_pages_per_s", "two_processes_pages_per_s")
    assert result["runs"] == [1, 2] and result["pages"] == 12
    assert result["efficiency"] == pytest.approx(result["speedup"] / 2)
