"""Backbones and the classifier around them: normalisation in the graph, GAP → dropout → dense head.

Every model takes float32 N×H×W×3 raw 0..255 pixels. The normalisation a backbone expects (VGG16's
BGR mean subtraction, Xception's scaling to -1..1, the small CNN's 0..1) is the first layer of the
graph, so the worker never needs to know which backbone it runs. The head is global average pooling,
dropout and one dense layer, so the class activation map of the last block is exact:
``cam = features @ dense.kernel``.
Backbones with a ``CAM_BLOCK`` read their map from that earlier block instead, through a linear
read-out fitted after training (:mod:`trainer.cam_readout`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from schema.manifest import InputSpec
from trainer.cam_readout import CamReadout, fit_readout
from trainer.errors import TrainerError
from trainer.recipe import RECIPES
from worker.imaging import ResizePolicy

BACKBONES = ("small-cnn", "vgg16", "xception")
DEFAULT_IMAGE_SIZE = {name: recipe.image_size for name, recipe in RECIPES.items()}
MIN_IMAGE_SIZE = {"small-cnn": 16, "vgg16": 32, "xception": 71}
# Layer-name prefixes of the top blocks that phase 2 fine-tunes.
FINE_TUNE_PREFIXES = {"vgg16": ("block5_",), "xception": ("block13_", "block14_"), "small-cnn": ("stage4_",)}
VGG_MEAN_BGR = (103.939, 116.779, 123.68)
SMALL_CNN_WIDTHS = (16, 32, 64, 128)
# The block whose class map the exported ``cam`` output gives (trainer.cam_readout); others: the last.
CAM_BLOCK = {"small-cnn": "stage3_b_relu"}


@keras.saving.register_keras_serializable(package="docsort")
class Normalize(layers.Layer):
    """Raw 0..255 RGB to what the backbone expects: ``vgg16`` (BGR minus mean), ``xception``, ``unit``."""

    def __init__(self, mode: str, **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in ("vgg16", "xception", "unit"):
            raise ValueError(f"unknown normalisation {mode!r}")
        self.mode = mode

    def call(self, x):
        if self.mode == "vgg16":
            return keras.ops.flip(x, axis=-1) - keras.ops.convert_to_tensor(VGG_MEAN_BGR, dtype=x.dtype)
        if self.mode == "xception":
            return x / 127.5 - 1.0
        return x / 255.0

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@dataclass
class Classifier:
    """The parts training and export need. ``model``: image → probs; ``features``: image → feature maps."""

    name: str
    model: keras.Model
    features: keras.Model
    pooled: keras.Model
    head: keras.Model
    dense: layers.Dense
    image_size: tuple[int, int]
    serving: Any = field(default=None, repr=False)  # the traced image → {probs, cam} function, once made
    taps: keras.Model | None = None  # image → [CAM block maps, feature maps], for a CAM_BLOCK backbone
    cam_readout: CamReadout | None = None  # set by fit_cam_readout after training

    @property
    def cam_shape(self) -> tuple[int, int]:
        shape = (
            self.taps.output[0].shape
            if self.taps is not None and self.cam_readout is not None
            else self.features.output.shape
        )
        return int(shape[1]), int(shape[2])

    def input_spec(self, resize: ResizePolicy = "letterbox") -> InputSpec:
        """What the exported graph takes: float32 N×H×W×3 raw pixels (normalised inside the graph)."""
        h, w = self.image_size
        return InputSpec(height=h, width=w, resize=resize, pad_value=255, dtype="float32")


def _conv_bn(x, filters: int, name: str, *, separable: bool, strides: int = 1):
    if separable:
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv")(x)
    else:
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def small_cnn(
    inputs, widths: tuple[int, ...] = SMALL_CNN_WIDTHS, separable: bool = False, residual: bool = False
):
    """A compact CNN for CPUs: a strided 3×3 stem, then stages of two 3×3 conv/BN/ReLU layers
    (optionally depthwise-separable, optionally with a residual shortcut), max-pooling between stages
    but the last two, so the last stage keeps stride 8: an 8×8 class activation map at 64 px."""
    x = _conv_bn(inputs, widths[0], "stem", separable=False, strides=2)
    for index, width in enumerate(widths, start=1):
        name = f"stage{index}"
        if 1 < index < len(widths):
            x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
        shortcut = x
        x = _conv_bn(x, width, f"{name}_a", separable=separable)
        x = _conv_bn(x, width, f"{name}_b", separable=separable)
        if residual:
            if shortcut.shape[-1] != width:
                shortcut = layers.Conv2D(width, 1, use_bias=False, name=f"{name}_proj")(shortcut)
                shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
            x = layers.Add(name=f"{name}_add")([x, shortcut])
    return x


def _backbone(name: str, size: tuple[int, int], weights: str | None) -> keras.Model:
    """The feature extractor (normalisation included). A weights FILE is either one this trainer saved
    (``backbone.weights.h5`` of a version folder) or, for VGG16/Xception, Keras's own "notop" file."""
    image = keras.Input((size[0], size[1], 3), name="image", dtype="float32")
    if name == "small-cnn":
        model = keras.Model(image, small_cnn(Normalize("unit", name="normalize")(image)), name="small_cnn")
        base = model
    else:
        app = keras.applications.VGG16 if name == "vgg16" else keras.applications.Xception
        shape = (size[0], size[1], 3)
        base = app(
            include_top=False, weights="imagenet" if weights == "imagenet" else None, input_shape=shape
        )
        model = keras.Model(image, base(Normalize(name, name="normalize")(image)), name=name)
    if weights not in (None, "imagenet"):
        _load_weights_file(model, base, str(weights))
    return model


def _strict_load(model: keras.Model, path: str) -> None:
    """``load_weights``, but a partial match (Keras only warns and keeps fresh weights) is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.load_weights(path)


def _load_weights_file(model: keras.Model, base: keras.Model, path: str) -> None:
    errors = (ValueError, OSError, KeyError, UserWarning)
    try:
        _strict_load(model, path)
        return
    except errors as exc:
        if base is model:
            raise TrainerError(f"--weights {path}: does not fit this backbone ({exc})") from exc
        first = exc
    try:
        _strict_load(base, path)
    except errors as exc:
        raise TrainerError(
            f"--weights {path}: fits neither this trainer's backbone ({first}) nor {base.name} ({exc})"
        ) from exc


def resolve_weights(weights: str) -> str | None:
    """``imagenet`` (Keras's download), ``none`` (random init) or the path of a weights file."""
    if weights == "none":
        return None
    if weights == "imagenet":
        return "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise TrainerError(f"--weights {weights}: not 'imagenet', 'none' or an existing weights file")
    return str(path)


def build_classifier(
    backbone: str,
    image_size: int | tuple[int, int],
    n_classes: int,
    weights: str = "none",
    dropout: float = 0.3,
) -> Classifier:
    if backbone not in BACKBONES:
        raise TrainerError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    if min(size) < MIN_IMAGE_SIZE[backbone]:
        raise TrainerError(
            f"{backbone} needs an input of at least {MIN_IMAGE_SIZE[backbone]} pixels, got {size}"
        )
    resolved = resolve_weights(weights)
    if backbone == "small-cnn" and resolved == "imagenet":
        raise TrainerError("small-cnn has no ImageNet weights: use --weights none or a weights file")
    try:
        features = _backbone(backbone, size, resolved)
    except (OSError, ValueError) as exc:
        raise TrainerError(f"cannot build {backbone} with weights {weights!r}: {exc}") from exc
    channels = int(features.output.shape[-1])
    vector = keras.Input((channels,), name="pooled")
    dense = layers.Dense(n_classes, name="logits")
    head_out = layers.Softmax(name="probs")(dense(layers.Dropout(dropout, name="dropout")(vector)))
    head = keras.Model(vector, head_out, name="head")
    image = keras.Input((size[0], size[1], 3), name="image", dtype="float32")
    pooled_out = layers.GlobalAveragePooling2D(name="gap")(features(image))
    pooled = keras.Model(image, pooled_out, name="pooled_features")
    model = keras.Model(image, head(pooled_out), name=f"docsort_{backbone.replace('-', '_')}")
    taps = None
    if backbone in CAM_BLOCK:
        block = features.get_layer(CAM_BLOCK[backbone]).output
        taps = keras.Model(features.input, [block, features.output], name="cam_taps")
    return Classifier(backbone, model, features, pooled, head, dense, size, taps=taps)


def fit_cam_readout(clf: Classifier, images: np.ndarray, labels: np.ndarray, batch_size: int = 64) -> None:
    """Fit the class map's read-out of the backbone's CAM block on training pages (inference mode);
    the exported ``cam`` then comes from that block. No-op for a backbone without a CAM block."""
    if clf.taps is None or len(images) == 0:
        return
    pooled = []
    for start in range(0, len(images), batch_size):
        block, _ = clf.taps(images[start : start + batch_size], training=False)
        pooled.append(keras.ops.convert_to_numpy(keras.ops.mean(block, axis=(1, 2))))
    clf.cam_readout = fit_readout(CAM_BLOCK[clf.name], np.concatenate(pooled), labels, int(clf.dense.units))
    clf.serving = None  # traced again with the read-out


def set_fine_tune(clf: Classifier, trainable_top: bool) -> int:
    """Freeze the backbone except its top blocks (``trainable_top``) or entirely; BatchNorm stays frozen
    in pretrained backbones. Returns the number of trainable backbone layers."""
    prefixes = FINE_TUNE_PREFIXES[clf.name]
    clf.features.trainable = True
    count = 0
    for layer in _leaf_layers(clf.features):
        top = any(layer.name.startswith(p) for p in prefixes)
        layer.trainable = trainable_top and top and not isinstance(layer, layers.BatchNormalization)
        count += int(layer.trainable and bool(layer.weights))
    return count


def _leaf_layers(model: keras.Model) -> list[layers.Layer]:
    out: list[layers.Layer] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += _leaf_layers(layer)
        else:
            out.append(layer)
    return out
