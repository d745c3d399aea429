"""Running an exported ONNX graph over decoded pages on the CPU, as a worker would (no TensorFlow)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from schema.manifest import ModelManifest


def prepare(manifest: ModelManifest, images: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×3 pages to the graph's input dtype and channels (as the worker's inference does)."""
    batch = images
    if manifest.input.channels == 1:
        batch = batch.mean(axis=3, keepdims=True)
    return batch.astype(np.uint8 if manifest.input.dtype == "uint8" else np.float32, copy=False)


def make_session(model: Path | bytes, threads: int = 0) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def run_outputs(
    session: Any,
    manifest: ModelManifest,
    images: np.ndarray,
    names: list[str],
    batch_size: int = 32,
    desc: str = "",
) -> list[np.ndarray]:
    """The graph outputs ``names`` for every page, batch by batch."""
    input_name = session.get_inputs()[0].name
    chunks: list[list[np.ndarray]] = [[] for _ in names]
    starts = range(0, images.shape[0], batch_size)
    for start in tqdm(starts, desc=desc or "run", disable=not desc, leave=False):
        out = session.run(names, {input_name: prepare(manifest, images[start : start + batch_size])})
        for store, value in zip(chunks, out, strict=True):
            store.append(np.asarray(value))
    return [np.concatenate(store) if store else np.zeros((0,), np.float32) for store in chunks]


def onnx_session(path: Path, threads: int | None = None) -> Any:
    """A CPU session for an exported model, with at most two intra-op threads unless told otherwise."""
    return make_session(Path(path), threads or min(2, os.cpu_count() or 1))


def run_onnx(
    session: Any, images: np.ndarray, batch_size: int = 64, with_cam: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Class scores (and CAMs when asked) for uint8 or float32 images N×H×W×3, in batches."""
    outputs = ["probs", "cam"] if with_cam else ["probs"]
    probs: list[np.ndarray] = []
    cams: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype(np.float32)
        result = session.run(outputs, {"image": batch})
        probs.append(result[0])
        if with_cam:
            cams.append(result[1])
    n_classes = session.get_outputs()[0].shape[-1]
    empty = np.zeros((0, n_classes if isinstance(n_classes, int) else 0), np.float32)
    return (np.concatenate(probs) if probs else empty), (np.concatenate(cams) if cams else None)
