"""Page embeddings for clustering: pooled backbone features from an ONNX version or a Keras backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from schema.manifest import load_manifest
from trainer.cluster import ClusterError, Embedder
from trainer.onnx_parts import GraphError, feature_map, pooled_consumer, with_outputs
from trainer.onnx_run import make_session
from trainer.tfsetup import import_tensorflow
from worker.imaging import ResizePolicy
from worker.inference import prepare_input

EmbedSpec = tuple[Embedder, tuple[int, int], ResizePolicy, int]


def pool_feature_map(fmap: np.ndarray, cam_shape: list[int]) -> np.ndarray:
    """Global average pooling of N×H×W×C (or N×C×H×W) feature maps, axes told apart by ``cam_shape``."""
    if fmap.ndim == 2:
        return fmap
    if fmap.ndim != 4:
        raise ClusterError(f"feature map of rank {fmap.ndim}, expected 4")
    if cam_shape and list(fmap.shape[2:4]) == list(cam_shape) and list(fmap.shape[1:3]) != list(cam_shape):
        return fmap.mean(axis=(2, 3))  # type: ignore[no-any-return]
    return fmap.mean(axis=(1, 2))  # type: ignore[no-any-return]


def onnx_embedder(version_dir: Path) -> EmbedSpec:
    """Pooled features of the feature map feeding ``probs`` and ``cam`` in the version's FP32 graph."""
    manifest = load_manifest(version_dir)
    model = onnx.load(str(version_dir / manifest.onnx_file))
    try:
        fmap = feature_map(model, manifest.outputs["probs"], manifest.outputs["cam"])
    except GraphError as exc:
        raise ClusterError(f"{version_dir}: {exc}") from exc
    pooled = pooled_consumer(model, fmap)
    wanted = pooled or fmap
    session = make_session(with_outputs(model, [wanted]).SerializeToString())
    input_name = session.get_inputs()[0].name

    def embed(images: np.ndarray) -> np.ndarray:
        (out,) = session.run([wanted], {input_name: prepare_input(images, manifest.input)})
        out = np.asarray(out)
        if pooled is None:
            return pool_feature_map(out, manifest.cam_shape)
        return out.reshape(out.shape[0], -1)

    spec = manifest.input
    return embed, (spec.height, spec.width), spec.resize, spec.pad_value


def keras_embedder(backbone: str, weights: str, image_size: int | None = None, seed: int = 0) -> EmbedSpec:
    """Pooled features of a Keras backbone (``trainer.backbones``); needs TensorFlow. ``seed`` fixes a
    random initialisation (``weights="none"``)."""
    import_tensorflow(seed=seed)
    # This imports Keras: only now that import_tensorflow has set it up quietly.
    from trainer.backbones import DEFAULT_IMAGE_SIZE, build_classifier

    size = image_size or DEFAULT_IMAGE_SIZE.get(backbone, 224)
    clf = build_classifier(backbone, size, 2, weights=weights)

    def embed(images: np.ndarray) -> np.ndarray:
        return np.asarray(clf.pooled(images.astype(np.float32), training=False))

    return embed, clf.image_size, "letterbox", 255
