"""ONNX export with in-graph CAM, the ONNX Runtime ↔ Keras parity check, and atomic publication.

The exported graph takes ``image`` (float32 N×H×W×3, raw 0..255) and gives ``probs`` (N×classes) and
``cam`` (N×h×w×classes) = last feature maps @ dense kernel: for a GAP → dense head this equals Grad-CAM
(before its ReLU) up to the factor 1/(h·w), so a worker gets CAM from a forward pass alone. A backbone
with a fitted CAM read-out (:mod:`trainer.cam_readout`) gives instead its earlier block's maps @ the
read-out's kernel + bias, in the same pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf

from schema.logs import get_logger
from trainer.backbones import Classifier
from trainer.errors import ExportParityError, TrainerError
from trainer.onnx_run import run_onnx

log = get_logger(__name__)
PARITY_TOLERANCE = 1e-4
OPSET = 17


def serving_function(clf: Classifier):
    """A tf.function image → {probs, cam} over the classifier in inference mode (traced once)."""
    if clf.serving is not None:
        return clf.serving

    height, width = clf.image_size
    spec = tf.TensorSpec((None, height, width, 3), tf.float32, name="image")

    @tf.function(input_signature=[spec])
    def serve(image):
        readout = clf.cam_readout
        if clf.taps is not None and readout is not None:
            block, feats = clf.taps(image, training=False)
            cam = tf.tensordot(block, tf.constant(readout.kernel), axes=1) + tf.constant(readout.bias)
        else:
            feats = clf.features(image, training=False)
            cam = tf.tensordot(feats, tf.convert_to_tensor(clf.dense.kernel), axes=1)
        probs = clf.head(tf.reduce_mean(feats, axis=[1, 2]), training=False)
        return {"probs": probs, "cam": cam}

    clf.serving = (serve, spec)
    return serve, spec


def export_onnx(clf: Classifier, path: Path) -> onnx.ModelProto:
    """Convert with tf2onnx; the graph's input is ``image`` and its outputs ``probs`` then ``cam``."""
    import tf2onnx  # slow to import (about 2 s): only when a graph is converted

    serve, spec = serving_function(clf)
    try:
        proto, _ = tf2onnx.convert.from_function(serve, input_signature=[spec], opset=OPSET)
    except Exception as exc:  # tf2onnx raises many types; name the step and keep the cause
        raise TrainerError(f"ONNX conversion of {clf.name} failed: {exc}") from exc
    outputs = {o.name: o for o in proto.graph.output}
    if set(outputs) != {"probs", "cam"} or [i.name for i in proto.graph.input] != ["image"]:
        raise TrainerError(
            f"exported graph has inputs/outputs {[i.name for i in proto.graph.input]}/{list(outputs)}"
        )
    n_classes = int(clf.dense.units)
    cam_h, cam_w = clf.cam_shape
    _set_shape(outputs["probs"], ["N", n_classes])
    _set_shape(outputs["cam"], ["N", cam_h, cam_w, n_classes])
    _set_shape(proto.graph.input[0], ["N", clf.image_size[0], clf.image_size[1], 3])
    ordered = [outputs["probs"], outputs["cam"]]
    del proto.graph.output[:]
    proto.graph.output.extend(ordered)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return proto


def _set_shape(value_info: onnx.ValueInfoProto, dims: list[int | str]) -> None:
    """Declare the static shape (batch symbolic) so readers of the graph know the CAM grid."""
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for dim in dims:
        entry = shape.dim.add()
        if isinstance(dim, str):
            entry.dim_param = dim
        else:
            entry.dim_value = dim


def check_parity(clf: Classifier, session: ort.InferenceSession, images: np.ndarray) -> dict[str, float]:
    """Compare ONNX Runtime with Keras on ``images``; raise :class:`ExportParityError` beyond 1e-4."""
    serve, _ = serving_function(clf)
    expected = serve(images.astype(np.float32))
    keras_probs, keras_cam = expected["probs"].numpy(), expected["cam"].numpy()
    onnx_probs, onnx_cam = run_onnx(session, clf.input_spec(), images, with_cam=True)
    assert onnx_cam is not None
    probs_diff = float(np.abs(onnx_probs - keras_probs).max()) if len(images) else 0.0
    cam_scale = float(np.abs(keras_cam).max()) or 1.0
    cam_diff = float(np.abs(onnx_cam - keras_cam).max() / cam_scale) if len(images) else 0.0
    result = {"n": len(images), "max_abs_probs_diff": probs_diff, "max_rel_cam_diff": cam_diff}
    if probs_diff > PARITY_TOLERANCE:
        raise ExportParityError(
            f"ONNX Runtime and Keras class scores differ by {probs_diff:.3g} (> {PARITY_TOLERANCE}) "
            f"on {len(images)} validation images; the model was not published"
        )
    if cam_diff > 1e-3:
        raise ExportParityError(
            f"ONNX Runtime and Keras CAMs differ by {cam_diff:.3g} relative; not published"
        )
    log.info("onnx_parity_ok", **result)
    return result
