"""Running an exported model with ONNX Runtime (no TensorFlow needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort


def onnx_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(
    session: ort.InferenceSession, images: np.ndarray, batch_size: int = 64, with_cam: bool = False
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
