"""Document augmentation: training-only, bounded, seeded, and never mirrored unless asked."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tf():
    from trainer.tfsetup import import_tensorflow

    return import_tensorflow(seed=1)


def _half_dark(n: int = 32, size: int = 32) -> np.ndarray:
    images = np.full((n, size, size, 3), 235.0, np.float32)
    images[:, :, : size // 2] = 20.0
    return images


def test_augmentation_is_identity_outside_training_and_bounded_inside(tf) -> None:
    from trainer.augment import DocumentAugment

    images = _half_dark()
    layer = DocumentAugment(seed=5)
    assert np.array_equal(layer(images, training=False).numpy(), images)
    out = layer(images, training=True).numpy()
    assert out.shape == images.shape and out.min() >= 0.0 and out.max() <= 255.0
    assert np.abs(out - images).mean() > 1.0  # it did change the pages
    again = DocumentAugment(seed=5)(images, training=True).numpy()
    assert np.array_equal(out, again)  # seeded


def test_augmentation_never_mirrors_text_by_default(tf) -> None:
    from trainer.augment import AugmentConfig, DocumentAugment

    images = _half_dark(64)
    out = DocumentAugment(seed=2)(images, training=True).numpy()
    left, right = out[:, :, :12].mean(axis=(1, 2, 3)), out[:, :, 20:].mean(axis=(1, 2, 3))
    assert np.all(left < right)
    mirrored = DocumentAugment(AugmentConfig(mirror=True), seed=2)(images, training=True).numpy()
    flipped = mirrored[:, :, :12].mean(axis=(1, 2, 3)) > mirrored[:, :, 20:].mean(axis=(1, 2, 3))
    assert 0 < flipped.sum() < len(images)
