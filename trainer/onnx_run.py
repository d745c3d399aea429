"""Running an exported ONNX graph over decoded pages on the CPU, as a worker would (no TensorFlow).

Pages reach the graph through the worker's own :func:`worker.inference.prepare_input`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from schema.manifest import InputSpec
from worker.inference import prepare_input


def make_session(model: Path | bytes, threads: int = 0) -> Any:
    import onnxruntime as ort  # heavy (0.1 s): only where a session is made

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def onnx_session(path: Path, threads: int | None = None) -> Any:
    """A CPU session for an exported model, with at most two intra-op threads unless told otherwise."""
    return make_session(Path(path), threads or min(2, os.cpu_count() or 1))


def run_outputs(
    session: Any,
    spec: InputSpec,
    images: np.ndarray,
    names: list[str],
    batch_size: int = 32,
    desc: str = "",
) -> list[np.ndarray]:
    """The graph outputs ``names`` for every uint8 page (N×H×W×3), batch by batch."""
    input_name = session.get_inputs()[0].name
    chunks: list[list[np.ndarray]] = [[] for _ in names]
    starts = range(0, images.shape[0], batch_size)
    for start in tqdm(starts, desc=desc or "run", disable=not desc, leave=False):
        out = session.run(names, {input_name: prepare_input(images[start : start + batch_size], spec)})
        for store, value in zip(chunks, out, strict=True):
            store.append(np.asarray(value))
    return [np.concatenate(store) if store else np.zeros((0,), np.float32) for store in chunks]


def run_onnx(
    session: Any, spec: InputSpec, images: np.ndarray, batch_size: int = 64, with_cam: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Class scores ``probs`` (and the ``cam`` maps when asked) for N×H×W×3 pages, in batches."""
    outputs = run_outputs(session, spec, images, ["probs", "cam"] if with_cam else ["probs"], batch_size)
    if len(images) == 0:
        n_classes = session.get_outputs()[0].shape[-1]
        empty = np.zeros((0, n_classes if isinstance(n_classes, int) else 0), np.float32)
        return empty, (np.zeros((0,), np.float32) if with_cam else None)
    return outputs[0], (outputs[1] if with_cam else None)
