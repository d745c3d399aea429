"""INT8 export: a QDQ model beside FP32 that runs, keeps its CAM, and reports agreement honestly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image
from typer.testing import CliRunner

from docsort.cli import app
from schema.manifest import load_manifest, sha256_file, write_manifest
from tests.support.tiny_model import make_tiny_model
from trainer.confidence import retarget
from trainer.data import decode_examples, scan_folder, split_files
from trainer.quantize import quantize_version


def write_pages(folder: Path, levels: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i, level in enumerate(levels):
        ramp = np.linspace(-20.0, 20.0, 30)[None, :, None]  # left darker than right: a CAM with a shape
        page = np.clip(rng.normal(level, 2.0, (40, 30, 3)) + ramp, 0, 255).astype(np.uint8)
        Image.fromarray(page).save(folder / f"p{i:03d}.png")


def tiny_version(tmp_path: Path) -> Path:
    version_dir = make_tiny_model(tmp_path / "models")
    manifest = load_manifest(version_dir)
    manifest.training.val_fraction, manifest.training.split_seed = 0.25, 3
    write_manifest(version_dir, manifest)
    return version_dir


def validation_pages(version_dir: Path, data: Path) -> np.ndarray:
    manifest = load_manifest(version_dir)
    split = split_files(scan_folder(data, manifest.class_names).files, 0.25, 0.0, 3)
    return decode_examples(split.val, (32, 32), "stretch", progress=False).images.astype(np.float32)


def test_int8_export_runs_keeps_cam_and_reports_agreement(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    write_pages(data / "dark", [int(v) for v in rng.integers(0, 100, 40)], seed=1)
    write_pages(data / "light", [int(v) for v in rng.integers(155, 256, 40)], seed=2)
    version_dir = tiny_version(tmp_path)
    fp32_sha = sha256_file(version_dir / "model.onnx")
    result = CliRunner().invoke(
        app,
        ["export", str(version_dir), "--int8", "--calib-dir", str(data), "--calib-images", "30", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-2])
    int8_path = version_dir / "model.int8.onnx"
    assert result.output.strip().splitlines()[-1] == str(int8_path)

    pages = validation_pages(version_dir, data)
    fp32 = ort.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
    p32, cam32 = fp32.run(["probs", "cam"], {"image": pages})
    p8, cam8 = int8.run(["probs", "cam"], {"image": pages})
    assert cam8.shape == cam32.shape == (len(pages), 8, 8, 2)
    agreement = float(np.mean(p32.argmax(axis=1) == p8.argmax(axis=1)))
    assert report["n_val"] == len(pages) == 20
    assert report["label_agreement"] == pytest.approx(agreement)
    assert report["cam_correlation"] > 0.9

    manifest = load_manifest(version_dir)
    assert manifest.int8 is not None and manifest.int8.usable and manifest.load == "int8"
    assert manifest.int8.sha256 == sha256_file(int8_path)
    assert manifest.model_file(version_dir) == int8_path
    assert sha256_file(version_dir / "model.onnx") == fp32_sha  # FP32 untouched
    assert manifest.metrics["confidence"]["scored_on"] == "int8"  # thresholds for the model loaded
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(int8_path)).graph.node)


def test_head_and_cam_branch_stay_float(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_pages(data / "dark", [30] * 12, seed=3)
    write_pages(data / "light", [220] * 12, seed=4)
    version_dir = tiny_version(tmp_path)
    quantize_version(version_dir, data, n_calib=10, progress=False)
    graph = onnx.load(str(version_dir / "model.int8.onnx")).graph
    made_by = {out: node.op_type for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type in ("Gemm", "MatMul", "Softmax"):  # the dense head, the CAM product, the softmax
            assert all(made_by.get(name) != "DequantizeLinear" for name in node.input[1:]), node.name
    softmax = next(n for n in graph.node if n.op_type == "Softmax")
    assert made_by[softmax.input[0]] == "Gemm"
    assert any(made_by.get(n.input[1]) == "DequantizeLinear" for n in graph.node if n.op_type == "Conv")


def test_int8_that_disagrees_with_fp32_is_not_marked_usable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Calibration sees black and white pages, so one INT8 step is about one grey level; most pages
    # mix grey levels 127 and 128, and FP32 tells them apart by less than that step.
    rng = np.random.default_rng(0)
    for name, extreme in (("dark", 12), ("light", 243)):
        (data / name).mkdir(parents=True)
        for i in range(40):
            if i % 5 == 0:
                page = np.full((40, 30, 3), extreme, np.uint8)
            else:
                mix = rng.random((40, 30, 1)) < rng.uniform(0.3, 0.7)
                page = np.where(mix, 128, 127).repeat(3, axis=2).astype(np.uint8)
            Image.fromarray(page).save(data / name / f"p{i:03d}.png")
    version_dir = tiny_version(tmp_path)
    result = CliRunner().invoke(app, ["export", str(version_dir), "--int8", "--calib-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "NOT USABLE" in result.output and "below the required 99%" in result.output
    manifest = load_manifest(version_dir)
    assert manifest.int8 is not None and not manifest.int8.usable
    assert manifest.int8.label_agreement < 0.99
    assert manifest.load == "fp32"
    assert manifest.model_file(version_dir) == version_dir / "model.onnx"
    assert (version_dir / "model.int8.onnx").is_file()
    # Retargeting now uses the FP32 scores, since FP32 is what the worker loads.
    retarget(version_dir, 0.9)
    assert load_manifest(version_dir).metrics["confidence"]["scored_on"] == "fp32"


def test_export_without_int8_or_data_says_what_is_missing(tmp_path: Path) -> None:
    version_dir = tiny_version(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(version_dir)])
    assert result.exit_code == 2 and "--int8" in result.output
    result = runner.invoke(app, ["export", str(version_dir), "--int8"])
    assert result.exit_code == 2 and "--calib-dir" in result.output
    assert not (version_dir / "model.int8.onnx").exists()


@pytest.mark.slow
def test_train_calibrates_and_int8_runs_on_a_trained_small_cnn(tmp_path: Path) -> None:
    """A real Keras model through tf2onnx: docsort train stores temperature and thresholds, --int8
    quantizes the backbone of the exported graph, and the INT8 model keeps its CAM output."""
    data = tmp_path / "data"
    rng = np.random.default_rng(8)
    write_pages(data / "dark", [int(v) for v in rng.integers(20, 110, 30)], seed=9)
    write_pages(data / "light", [int(v) for v in rng.integers(150, 240, 30)], seed=10)
    models = tmp_path / "models"
    args = ["train", str(data), "--models-dir", str(models), "--image-size", "32", "--epochs", "2", "--int8"]
    result = CliRunner().invoke(app, [*args, "--weights", "none", "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    version_dir = Path(result.output.strip().splitlines()[-1])
    manifest = load_manifest(version_dir)
    confidence = manifest.metrics["confidence"]
    assert confidence["calibration"]["temperature"] == pytest.approx(manifest.temperature)
    assert manifest.thresholds.target_auto_accuracy == 0.995
    assert (version_dir / "report" / "risk_coverage.png").is_file()
    assert manifest.int8 is not None and f"INT8: {manifest.int8.note}" in result.output
    pages = np.stack([np.full((32, 32, 3), v, np.float32) for v in (40.0, 200.0)])
    int8 = ort.InferenceSession(str(version_dir / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    probs, cam = int8.run(["probs", "cam"], {"image": pages})
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert cam.shape == (2, *manifest.cam_shape, 2)
    assert 0.0 <= manifest.int8.label_agreement <= 1.0
