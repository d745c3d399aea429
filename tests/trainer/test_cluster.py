"""Clustering unlabelled pages: text-like pages and smooth photos come apart (generated data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageFilter
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from docsort.cli import app
from schema.manifest import InputSpec, ModelManifest, sha256_file, write_manifest
from trainer.cluster import ClusterError, cluster_folder
from trainer.embed import onnx_embedder


def texture_model(version_dir: Path, size: int = 64) -> Path:
    """A contract model (probs + cam) whose backbone sees brightness and edges, as a trained one would."""
    kernels = [
        np.pad(np.ones((1, 1)), 1) / 255.0,  # brightness
        np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 255.0,  # vertical edges
        np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]) / 255.0,  # horizontal edges
        np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]) / 255.0,  # fine detail
    ]
    conv_w = np.stack([np.stack([k / 3.0] * 3) for k in kernels]).astype(np.float32)  # on the grey level
    dense_w = np.array([[-2, 2], [3, -3], [3, -3], [3, -3]], dtype=np.float32)
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv_w"], ["edges"], pads=[1, 1, 1, 1]),
        helper.make_node("Abs", ["edges"], ["energy"]),
        helper.make_node("AveragePool", ["energy"], ["feat"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("GlobalAveragePool", ["feat"], ["gap4"]),
        helper.make_node("Flatten", ["gap4"], ["gap"], axis=1),
        helper.make_node("MatMul", ["gap", "dense_w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        helper.make_node("Transpose", ["feat"], ["feat_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["feat_nhwc", "dense_w"], ["cam"]),
    ]
    graph = helper.make_graph(
        nodes,
        "texture",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", size, size, 3])],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", size // 8, size // 8, 2]),
        ],
        [numpy_helper.from_array(conv_w, "conv_w"), numpy_helper.from_array(dense_w, "dense_w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    version_dir.mkdir(parents=True)
    onnx.save(model, str(version_dir / "model.onnx"))
    manifest = ModelManifest(
        name="texture",
        version="1",
        backbone="texture-test",
        class_names=["text", "photo"],
        input=InputSpec(height=size, width=size),
        sha256=sha256_file(version_dir / "model.onnx"),
        cam_shape=[size // 8, size // 8],
    )
    write_manifest(version_dir, manifest)
    return version_dir


def text_page(rng: np.random.Generator) -> Image.Image:
    h, w = int(rng.integers(220, 300)), int(rng.integers(160, 220))
    page = np.full((h, w), 245, dtype=np.uint8)
    for y in range(12, h - 12, int(rng.integers(9, 13))):
        x = 10
        while x < w - 20:
            word = int(rng.integers(6, 24))
            page[y : y + 5, x : min(x + word, w - 10)] = int(rng.integers(0, 60))
            x += word + int(rng.integers(3, 7))
    return Image.fromarray(page).convert("RGB")


def photo_page(rng: np.random.Generator) -> Image.Image:
    h, w = int(rng.integers(150, 220)), int(rng.integers(200, 280))
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        channels.append(120 + 90 * np.sin(3 * a * xx + 3 * b * yy + 6 * c))
    img = Image.fromarray(np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(3))


@pytest.fixture
def unlabelled(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    rng = np.random.default_rng(7)
    root = tmp_path / "inbox"
    truth = {}
    for i in range(24):
        kind = i % 2
        folder = root / ("scans" if i % 3 else "more")  # files in sub-folders, names may repeat
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"page{i // 3:02d}.{'png' if kind == 0 else 'jpg'}"
        (text_page if kind == 0 else photo_page)(rng).save(path)
        truth[str(path)] = kind
    (root / "scans" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a picture")
    return root, truth


def test_cluster_separates_text_pages_from_photos(
    tmp_path: Path, unlabelled: tuple[Path, dict[str, int]]
) -> None:
    root, truth = unlabelled
    embedder = onnx_embedder(texture_model(tmp_path / "model"))
    out = tmp_path / "clusters"
    result = cluster_folder(root, out, 2, embedder, progress=False)
    predicted = [int(label) for label in result.labels]
    assert adjusted_rand_score([truth[str(p)] for p in result.files], predicted) >= 0.9
    assert [u["path"] for u in result.unreadable] == [str(root / "scans" / "broken.png")]
    summary = json.loads((out / "clusters.json").read_text())
    assert summary["k"] == 2 and sum(summary["sizes"]) == 24
    for name in ("cluster_01", "cluster_02"):
        copies = sorted((out / name).iterdir())
        assert len(copies) == summary["sizes"][int(name[-2:]) - 1]
        with Image.open(out / f"{name}.png") as sheet:
            assert sheet.size[0] > 128 and sheet.size[1] > 128
    copied = next((out / "cluster_01").iterdir())
    original = root / copied.name.replace("__", "/")
    assert copied.read_bytes() == original.read_bytes()  # a copy, and the original is kept
    assert len(list(root.rglob("*.*"))) == 25


def test_cluster_refuses_a_folder_that_is_not_empty(
    tmp_path: Path, unlabelled: tuple[Path, dict[str, int]]
) -> None:
    root, _ = unlabelled
    out = tmp_path / "clusters"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    embedder = onnx_embedder(texture_model(tmp_path / "model"))
    with pytest.raises(ClusterError, match="not empty"):
        cluster_folder(root, out, 2, embedder, progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(ClusterError, match="at least 2"):
        cluster_folder(root, tmp_path / "other", 1, embedder, progress=False)


def test_cluster_command_writes_folders_and_sheets(
    tmp_path: Path, unlabelled: tuple[Path, dict[str, int]]
) -> None:
    root, _ = unlabelled
    model = texture_model(tmp_path / "model")
    out = tmp_path / "clusters"
    result = CliRunner().invoke(
        app, ["cluster", str(root), "--k", "3", str(out), "--model", str(model), "--link"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(out)
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["cluster_01", "cluster_02", "cluster_03"]
    assert all((out / f"{name}.png").is_file() for name in folders)
    assert sum(len(list((out / name).iterdir())) for name in folders) == 24
    linked = next((out / "cluster_01").iterdir())
    assert linked.stat().st_nlink == 2  # a hard link to the original, not a copy


def test_cluster_with_a_keras_backbone_places_every_page(
    tmp_path: Path, unlabelled: tuple[Path, dict[str, int]]
) -> None:
    root, _ = unlabelled
    out = tmp_path / "clusters"
    args = ["cluster", str(root), "--k", "2", str(out), "--backbone", "small-cnn", "--weights", "none"]
    result = CliRunner().invoke(app, [*args, "--image-size", "64"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "clusters.json").read_text())
    assert sorted(summary["sizes"]) == sorted(len(list((out / f"cluster_0{i}").iterdir())) for i in (1, 2))
    assert sum(summary["sizes"]) == 24 and min(summary["sizes"]) >= 1
    assert len(summary["unreadable"]) == 1
