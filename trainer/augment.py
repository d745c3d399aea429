"""Augmentation that suits documents, as one Keras layer active only while training.

Small rotations, scale and shift (one affine warp, white fill: paper), brightness and contrast, blur
and noise. No mirroring by default: mirrored text is not text. Works on raw 0..255 float pixels, before
the in-graph normalisation; it is not part of the exported graph.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras
import tensorflow as tf


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 4.0
    scale: float = 0.08  # zoom in/out by up to this fraction
    shift: float = 0.06  # translate by up to this fraction of the side
    brightness: float = 0.12  # add up to ± this × 255
    contrast: float = 0.2  # scale about the mean by 1 ± this
    blur_prob: float = 0.2
    noise_prob: float = 0.2
    noise_std: float = 6.0  # grey levels
    mirror: bool = False
    fill_value: float = 255.0

    def as_dict(self) -> dict[str, float | bool]:
        return asdict(self)


def _affine(batch: int, height: int, width: int, cfg: AugmentConfig, seed: keras.random.SeedGenerator):
    """Per-image projective transforms (output → input) for rotation, zoom and shift about the centre."""
    angle = keras.random.uniform((batch,), -1.0, 1.0, seed=seed) * (cfg.rotate_deg * math.pi / 180.0)
    zoom = 1.0 + keras.random.uniform((batch,), -cfg.scale, cfg.scale, seed=seed)
    dx = keras.random.uniform((batch,), -cfg.shift, cfg.shift, seed=seed) * width
    dy = keras.random.uniform((batch,), -cfg.shift, cfg.shift, seed=seed) * height
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = cx - a0 * cx - a1 * cy - dx
    b2 = cy - b0 * cx - b1 * cy - dy
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def _blur(images):
    kernel_1d = tf.constant([1.0, 2.0, 1.0]) / 4.0
    kernel = tf.tensordot(kernel_1d, kernel_1d, axes=0)[:, :, None, None]
    kernel = tf.tile(kernel, [1, 1, 3, 1])
    return tf.nn.depthwise_conv2d(images, kernel, strides=[1, 1, 1, 1], padding="SAME")


@keras.saving.register_keras_serializable(package="docsort")
class DocumentAugment(keras.layers.Layer):
    def __init__(self, config: AugmentConfig | None = None, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config or AugmentConfig()
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        cfg, seed = self.config, self.seed_generator
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        if cfg.mirror:
            flip = keras.random.uniform((batch, 1, 1, 1), seed=seed) < 0.5
            images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        transforms = _affine(batch, tf.cast(height, tf.float32), tf.cast(width, tf.float32), cfg, seed)
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=transforms,
            output_shape=shape[1:3],
            fill_value=cfg.fill_value,
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )
        blur = keras.random.uniform((batch, 1, 1, 1), seed=seed) < cfg.blur_prob
        images = tf.where(blur, _blur(images), images)
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        contrast = 1.0 + keras.random.uniform((batch, 1, 1, 1), -cfg.contrast, cfg.contrast, seed=seed)
        bright = keras.random.uniform((batch, 1, 1, 1), -cfg.brightness, cfg.brightness, seed=seed) * 255.0
        images = (images - mean) * contrast + mean + bright
        noisy = tf.cast(keras.random.uniform((batch, 1, 1, 1), seed=seed) < cfg.noise_prob, images.dtype)
        images = images + noisy * keras.random.normal(tf.shape(images), stddev=cfg.noise_std, seed=seed)
        return tf.clip_by_value(images, 0.0, 255.0)

    def compute_output_shape(self, input_shape):
        return input_shape
