"""ONNX export: in-graph CAM equals Grad-CAM, parity failures are loud, version folders appear whole."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from schema.manifest import InputSpec, ModelManifest, load_manifest
from tests.trainer.synthetic import make_folder
from trainer.errors import ExportParityError
from trainer.publish import rename_into_place, version_name


@pytest.fixture(scope="module")
def tf():
    from trainer.tfsetup import import_tensorflow

    return import_tensorflow(seed=3)


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    from tests.trainer.synthetic import picture_like, text_like
    from worker.imaging import resize_array

    rng = np.random.default_rng(seed)
    draw = [text_like, picture_like]
    return np.stack([resize_array(draw[i % 2](rng, 40, 60), (size, size)) for i in range(n)])


def _grad_cam(tf, clf, images: np.ndarray, k: int) -> np.ndarray:
    """Grad-CAM before its ReLU: feature maps weighted by the spatial mean of d logit_k / d features."""
    x = tf.convert_to_tensor(images.astype(np.float32))
    with tf.GradientTape() as tape:
        feats = clf.features(x, training=False)
        tape.watch(feats)
        logits = clf.dense(tf.reduce_mean(feats, axis=[1, 2]))
        score = logits[:, k]
    grads = tape.gradient(score, feats)
    alpha = tf.reduce_mean(grads, axis=[1, 2])
    return tf.reduce_sum(feats * alpha[:, None, None, :], axis=-1).numpy()


def _briefly_trained(tf, backbone: str, size: int):
    from trainer.backbones import build_classifier

    clf = build_classifier(backbone, size, 2, "none")
    clf.model.compile("adam", "sparse_categorical_crossentropy")
    images = _images(16, size, seed=1)
    clf.model.fit(images.astype(np.float32), np.arange(16) % 2, epochs=2, batch_size=8, verbose=0)
    return clf


@pytest.mark.parametrize(
    "backbone,size", [("small-cnn", 96), pytest.param("xception", 96, marks=pytest.mark.slow)]
)
def test_in_graph_cam_correlates_with_tensorflow_grad_cam(
    tf, tmp_path: Path, backbone: str, size: int
) -> None:
    from trainer.export import export_onnx
    from trainer.onnx_run import onnx_session, run_onnx

    clf = _briefly_trained(tf, backbone, size)
    export_onnx(clf, tmp_path / "model.onnx")
    images = _images(6, size, seed=2)
    _, cams = run_onnx(onnx_session(tmp_path / "model.onnx"), clf.input_spec(), images, with_cam=True)
    assert cams is not None and cams.shape == (6, *clf.cam_shape, 2) and clf.cam_shape[0] >= 3
    for k in range(2):
        grad_cam = _grad_cam(tf, clf, images, k)
        for i in range(len(images)):
            ours, theirs = cams[i, :, :, k].ravel(), grad_cam[i].ravel()
            assert np.corrcoef(ours, theirs)[0, 1] > 0.99
            relu_ours, relu_theirs = np.maximum(ours, 0), np.maximum(theirs, 0)
            if relu_theirs.std() > 0:
                assert np.corrcoef(relu_ours, relu_theirs)[0, 1] > 0.99
    h, w = clf.cam_shape
    assert np.allclose(_grad_cam(tf, clf, images, 0), cams[..., 0] / (h * w), rtol=1e-3, atol=1e-5)


def test_export_refuses_a_graph_whose_scores_differ_from_keras(tf, tmp_path: Path) -> None:
    from trainer.backbones import build_classifier
    from trainer.export import check_parity, export_onnx
    from trainer.onnx_run import onnx_session

    exported = build_classifier("small-cnn", 32, 3, "none")
    other = build_classifier("small-cnn", 32, 3, "none")  # different random weights
    export_onnx(exported, tmp_path / "model.onnx")
    session = onnx_session(tmp_path / "model.onnx")
    images = _images(8, 32)
    assert check_parity(exported, session, images)["max_abs_probs_diff"] <= 1e-4
    with pytest.raises(ExportParityError, match="differ by"):
        check_parity(other, session, images)


def _manifest(version: str) -> ModelManifest:
    return ModelManifest(
        name="m", version=version, backbone="small-cnn", class_names=["a", "b"],
        input=InputSpec(height=8, width=8), sha256="0" * 64,
    )  # fmt: skip


def test_taken_version_name_gets_a_suffix_and_manifest_says_so(tmp_path: Path) -> None:
    base = version_name(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert base == "20260102-030405"
    (tmp_path / base).mkdir()
    (tmp_path / base / "keep").write_text("x")
    placed = []
    for _ in range(2):
        build = tmp_path / ".building"
        build.mkdir()
        (build / "model.onnx").write_bytes(b"onnx")
        placed.append(rename_into_place(build, tmp_path, _manifest(base)))
    assert [p.name for p in placed] == [f"{base}-2", f"{base}-3"]
    assert (tmp_path / base / "keep").read_text() == "x"
    for p in placed:
        assert load_manifest(p, verify=False).version == p.name


def test_failed_training_leaves_no_partial_version(tf, tmp_path: Path) -> None:
    from trainer.errors import TrainerError
    from trainer.recipe import TrainOptions
    from trainer.train import train

    data = make_folder(tmp_path / "data", per_class=4)
    for path in (data / "picture").iterdir():
        path.write_bytes(b"GIF89a-broken")
    opts = TrainOptions(
        data_dir=data, models_dir=tmp_path / "models", image_size=32, epochs=1, progress=False
    )
    with pytest.raises(TrainerError, match=r"no readable training examples of class\(es\) \['picture'\]"):
        train(opts)
    assert list((tmp_path / "models" / "docsort").iterdir()) == []
