"""tf.data input pipelines over the decoded uint8 cache: float32 raw 0..255 pixels, as the graph expects."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def make_dataset(
    images: np.ndarray, labels: np.ndarray | None, batch_size: int, *, shuffle: bool = False, seed: int = 0
) -> tf.data.Dataset:
    """Batches of ``(float32 images, int labels)`` (or images alone) from the uint8 cache, in order unless
    ``shuffle`` (reshuffled each epoch from ``seed``). No pixel change other than the cast."""
    tensors = (images,) if labels is None else (images, labels.astype(np.int64))
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)

    def cast(x, *rest):
        x = tf.cast(x, tf.float32)
        return (x, *rest) if rest else x

    return ds.batch(batch_size).map(cast, num_parallel_calls=1, deterministic=True).prefetch(2)


def make_feature_dataset(
    features: np.ndarray, labels: np.ndarray, batch_size: int, *, shuffle: bool = False, seed: int = 0
) -> tf.data.Dataset:
    """Batches of cached pooled backbone features, for training the head alone."""
    ds = tf.data.Dataset.from_tensor_slices((features.astype(np.float32), labels.astype(np.int64)))
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(2)
