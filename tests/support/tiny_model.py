"""A tiny ONNX model of the docsort model contract, built without TensorFlow.

Input ``image``: float32 N×H×W×3 in 0..255. Outputs ``probs`` (N×2) and ``cam`` (N×h×w×2), where the
CAM is computed in the graph from the dense head's weights, as the trainer's export does.

Its two classes are ``dark`` and ``light``: a mostly black page is ``dark`` with high confidence, a
white page ``light``, and a mid-grey page sits near 0.5 (review). Tests use it to steer decisions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from schema.manifest import InputSpec, ModelManifest, Thresholds, sha256_file, write_manifest


def build_tiny_onnx(size: tuple[int, int] = (32, 32), sharpness: float = 10.0) -> onnx.ModelProto:
    h, w = size
    conv_w = np.zeros((2, 3, 1, 1), dtype=np.float32)
    conv_w[0, :, 0, 0] = -1.0 / (3 * 255.0)  # darkness
    conv_w[1, :, 0, 0] = 1.0 / (3 * 255.0)  # lightness
    conv_b = np.array([1.0, 0.0], dtype=np.float32)
    dense_w = np.array([[sharpness, -sharpness], [-sharpness, sharpness]], dtype=np.float32)
    dense_b = np.zeros(2, dtype=np.float32)
    inits = [
        numpy_helper.from_array(conv_w, "conv_w"),
        numpy_helper.from_array(conv_b, "conv_b"),
        numpy_helper.from_array(dense_w, "dense_w"),
        numpy_helper.from_array(dense_b, "dense_b"),
    ]
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv_w", "conv_b"], ["feat_full"]),
        helper.make_node("AveragePool", ["feat_full"], ["feat"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("GlobalAveragePool", ["feat"], ["gap4"]),
        helper.make_node("Flatten", ["gap4"], ["gap"], axis=1),
        helper.make_node("Gemm", ["gap", "dense_w", "dense_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        helper.make_node("Transpose", ["feat"], ["feat_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["feat_nhwc", "dense_w"], ["cam"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", h, w, 3])],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", h // 4, w // 4, 2]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def make_tiny_model(
    models_dir: Path,
    name: str = "tiny",
    version: str = "1",
    size: tuple[int, int] = (32, 32),
    confidence: float = 0.9,
    margin: float = 0.0,
    sharpness: float = 10.0,
) -> Path:
    """Write ``models_dir/name/version/{model.onnx, manifest.json, report/}`` and return the folder."""
    version_dir = Path(models_dir) / name / version
    (version_dir / "report").mkdir(parents=True, exist_ok=True)
    onnx.save(build_tiny_onnx(size, sharpness), str(version_dir / "model.onnx"))
    manifest = ModelManifest(
        name=name,
        version=version,
        backbone="tiny-test",
        class_names=["dark", "light"],
        input=InputSpec(height=size[0], width=size[1], resize="stretch"),
        thresholds=Thresholds(confidence=confidence, margin=margin),
        sha256=sha256_file(version_dir / "model.onnx"),
        cam_shape=[size[0] // 4, size[1] // 4],
    )
    write_manifest(version_dir, manifest)
    return version_dir
