"""The shared test model honours the contract every other suite relies on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from schema.manifest import load_manifest
from tests.support.tiny_model import make_tiny_model


def test_tiny_model_follows_the_contract(tmp_path: Path) -> None:
    version_dir = make_tiny_model(tmp_path)
    manifest = load_manifest(version_dir)
    sess = ort.InferenceSession(str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = np.stack([np.zeros((32, 32, 3)), np.full((32, 32, 3), 255.0), np.full((32, 32, 3), 127.5)])
    probs, cam = sess.run(["probs", "cam"], {"image": batch.astype(np.float32)})
    assert probs.shape == (3, 2) and cam.shape == (3, 8, 8, 2)
    assert manifest.class_names[int(probs[0].argmax())] == "dark" and probs[0].max() > 0.99
    assert manifest.class_names[int(probs[1].argmax())] == "light" and probs[1].max() > 0.99
    assert abs(probs[2, 0] - 0.5) < 0.01
    # CAM lights up where the evidence is: a dark square on a white page.
    page = np.full((1, 32, 32, 3), 255.0, dtype=np.float32)
    page[0, :16, :16] = 0
    _, cam = sess.run(["probs", "cam"], {"image": page})
    assert cam[0, :4, :4, 0].mean() > cam[0, 4:, 4:, 0].mean()
