"""Running an exported ONNX graph over decoded pages on the CPU, as a worker would (no TensorFlow)."""

from __future__ import annotations

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
