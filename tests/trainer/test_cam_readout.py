"""The class map read out of an earlier block: fitted on pooled block features, exported as ``cam`` in
the same pass as ``probs``, which it leaves unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from trainer.cam_readout import MISSING_CLASS_BIAS, fit_readout


def test_two_class_readout_gives_the_logistic_probability_as_a_per_cell_softmax() -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(80) % 2
    pooled = rng.normal(size=(80, 5)) + labels[:, None] * np.array([2.0, 0, 0, -1.0, 0])
    readout = fit_readout("block", pooled, labels, 2)
    assert readout.kernel.shape == (5, 2) and readout.bias.shape == (2,)
    assert readout.train_accuracy > 0.8
    votes = softmax(pooled @ readout.kernel + readout.bias, axis=1)
    assert np.mean(votes.argmax(axis=1) == labels) == pytest.approx(readout.train_accuracy)
    maps = pooled.reshape(80, 1, 1, 5) * np.ones((1, 3, 4, 1))
    assert readout.cam(maps).shape == (80, 3, 4, 2)


def test_a_class_without_training_pages_never_wins_a_cell() -> None:
    rng = np.random.default_rng(1)
    labels = np.array([0, 2] * 30)
    pooled = rng.normal(size=(60, 4)) + (labels == 2)[:, None] * 3.0
    readout = fit_readout("block", pooled, labels, 3)
    assert readout.bias[1] == MISSING_CLASS_BIAS and not readout.kernel[:, 1].any()
    assert not np.any(np.argmax(pooled @ readout.kernel + readout.bias, axis=1) == 1)


def test_exported_cam_is_the_blocks_readout_and_probs_are_unchanged(tmp_path: Path) -> None:
    import onnx

    from tests.trainer.test_export import _images
    from trainer.backbones import CAM_BLOCK, build_classifier, fit_cam_readout
    from trainer.export import export_onnx
    from trainer.onnx_parts import feature_map, split_parts
    from trainer.onnx_run import onnx_session, run_onnx
    from trainer.tfsetup import import_tensorflow

    import_tensorflow(seed=5)
    clf = build_classifier("small-cnn", 64, 2, "none")
    images = _images(12, 64, seed=4)
    labels = np.arange(12) % 2
    export_onnx(clf, tmp_path / "last.onnx")
    fit_cam_readout(clf, images.astype(np.float32), labels)
    assert clf.cam_readout is not None and clf.cam_readout.block == CAM_BLOCK["small-cnn"]
    export_onnx(clf, tmp_path / "readout.onnx")
    spec = clf.input_spec()
    probs_last, cam_last = run_onnx(onnx_session(tmp_path / "last.onnx"), spec, images, with_cam=True)
    probs, cams = run_onnx(onnx_session(tmp_path / "readout.onnx"), spec, images, with_cam=True)
    assert np.allclose(probs, probs_last, atol=1e-5)
    assert cams is not None and cam_last is not None
    block = clf.taps(images.astype(np.float32), training=False)[0].numpy()  # type: ignore[misc]
    assert cams.shape == (12, *block.shape[1:3], 2) == (12, 8, 8, 2)
    assert np.allclose(cams, clf.cam_readout.cam(block), atol=1e-3)
    assert not np.allclose(cams, cam_last, atol=1e-2)
    # The graph's parts still split at the pooled feature map, not at the block the read-out taps:
    # every convolution (all four stages) is backbone, and the map pooled before probs is the last.
    model = onnx.load(str(tmp_path / "readout.onnx"))
    backbone, head = split_parts(model)
    convs = {i for i, node in enumerate(model.graph.node) if node.op_type == "Conv"}
    assert len(convs) >= 9 and convs <= backbone and head and not head & convs
    pooled_by = [n for n in model.graph.node if feature_map(model) in n.input]
    assert any(n.op_type in ("ReduceMean", "GlobalAveragePool") for n in pooled_by)
