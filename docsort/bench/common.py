"""What the benchmarks share: their error, a model version folder for a bare ONNX file, pages to run on."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from schema.errors import DocsortError
from schema.manifest import InputSpec, ModelManifest, sha256_file, write_manifest
from worker.imaging import EXTENSIONS


class BenchError(DocsortError):
    """A benchmark cannot run as asked (missing data, device or service); the message says what to do."""


def write_version(
    folder: Path, onnx_file: Path, backbone: str, size: tuple[int, int], cam_shape: list[int]
) -> Path:
    """A model version folder (model.onnx + manifest.json) around an exported graph, so that the worker's
    own inference code loads it exactly as it loads a trained version."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "model.onnx"
    if onnx_file.resolve() != target.resolve():
        shutil.copyfile(onnx_file, target)
    manifest = ModelManifest(
        name="bench",
        version=folder.name,
        backbone=backbone,
        class_names=["class_a", "class_b"],
        input=InputSpec(height=size[0], width=size[1], resize="stretch"),
        sha256=sha256_file(target),
        cam_shape=cam_shape,
    )
    write_manifest(folder, manifest)
    return folder


def page_files(data_dir: Path, n: int, seed: int = 0) -> list[Path]:
    """Up to ``n`` page files of a folder (recursively, any supported type), drawn at random by ``seed``."""
    files = sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if not files:
        raise BenchError(f"{data_dir}: no page files (JPEG, PNG, TIFF, BMP, WebP, GIF or PDF) found")
    if len(files) <= n:
        return files
    picked = np.random.default_rng(seed).choice(len(files), size=n, replace=False)
    return [files[i] for i in sorted(picked)]


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")
