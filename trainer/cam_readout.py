"""The class map of an earlier block: a linear read-out fitted on that block's pooled features.

The last stage of the small CNN sees more than the whole 64-px page (a receptive field of about 97
pixels), so its class map (``features @ dense.kernel``) can peak anywhere the network found a shortcut:
on composite pages its peak fell inside the deciding region on 36-72 % of pages, depending on the seed.
An earlier block (``CAM_BLOCK``: stage 3 of the small CNN, 8 x 8 cells, a receptive field of 65 px)
still tells the classes apart from its pooled features, and a class map read from it points at what
decides on 97-100 % of those pages (docs/review.md). So after training, a multinomial logistic
regression is fitted on the training pages' global-average-pooled block features; applied at every
cell of the block (``block @ kernel + bias``) it gives the exported ``cam`` output. The decision itself
(``probs``) is unchanged: the read-out only explains it. Backbones without a ``CAM_BLOCK`` keep the
last block's exact CAM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schema.logs import get_logger

log = get_logger(__name__)
READOUT_C = 1.0  # inverse L2 strength of the logistic regression (scikit-learn's default)
MISSING_CLASS_BIAS = -30.0  # a class without training pages never wins a cell


@dataclass(frozen=True)
class CamReadout:
    block: str  # the layer whose output is read
    kernel: np.ndarray  # channels x classes
    bias: np.ndarray  # classes
    train_accuracy: float  # of the read-out on the pooled block features of the training pages

    def cam(self, block_maps: np.ndarray) -> np.ndarray:
        """N x h x w x channels block maps to N x h x w x classes class evidence."""
        return np.tensordot(block_maps, self.kernel, axes=1) + self.bias  # type: ignore[no-any-return]


def fit_readout(block: str, pooled: np.ndarray, labels: np.ndarray, n_classes: int) -> CamReadout:
    """Fit the read-out on pooled block features (N x channels) and their class indices. Two classes
    give one logistic direction, split as -w/2, +w/2 so that the per-cell softmax equals its sigmoid."""
    # scikit-learn is imported only where a read-out is fitted (training), not by the worker.
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels, dtype=np.int64)
    present = np.unique(labels)
    kernel = np.zeros((pooled.shape[1], n_classes), np.float32)
    bias = np.full(n_classes, MISSING_CLASS_BIAS, np.float32)
    if len(present) == 1:
        bias[present[0]] = 0.0
        return CamReadout(block, kernel, bias, 1.0)
    model = LogisticRegression(C=READOUT_C, max_iter=2000).fit(pooled, labels)
    if len(present) == 2:
        w, b = model.coef_[0] / 2, model.intercept_[0] / 2
        kernel[:, present[0]], kernel[:, present[1]] = -w, w
        bias[present[0]], bias[present[1]] = -b, b
    else:
        kernel[:, present] = model.coef_.T
        bias[present] = model.intercept_
    accuracy = float(model.score(pooled, labels))
    log.info(
        "cam_readout_fitted", block=block, channels=int(pooled.shape[1]), train_accuracy=round(accuracy, 4)
    )
    return CamReadout(block, kernel, bias, accuracy)
