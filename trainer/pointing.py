"""The CAM pointing check: does the class map of the default page recipe point at what decides?

Composite pages whose deciding region is known: a text page with a photo pasted in (class ``photo``),
a letter with a form block (``form``), and plain text (``text``). A small CNN of the default recipe
(64 px, an 8 x 8 map) is trained on them for a few epochs and its class map's read-out fitted as
publishing does (:mod:`trainer.cam_readout`); on held-out composite pages, the exported ``cam``
output's peak cell for the page's class must lie inside the pasted region. The last block's own map
(``features @ dense kernel``) is measured beside it. ``python -m trainer.pointing`` measures several
seeds and draws ``docs/review_pointing.png``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.backbones import build_classifier, fit_cam_readout
from trainer.export import serving_function
from trainer.recipe import RECIPES
from trainer.tfsetup import import_tensorflow

CLASSES = ("text", "photo", "form")
SIZE = RECIPES["small-cnn"].image_size  # 64: the default page recipe's input


@dataclass(frozen=True)
class Pages:
    images: np.ndarray  # N x SIZE x SIZE x 3, 0..255 float32
    labels: np.ndarray  # N class indices
    boxes: np.ndarray  # N x 4 (top, left, bottom, right) of the deciding region; -1 for text pages


def _text(rng: np.random.Generator, img: np.ndarray, top: int, left: int, bottom: int, right: int) -> None:
    y = top + int(rng.integers(1, 4))
    while y + 2 < bottom:
        x = left + int(rng.integers(1, 4))
        while x + 3 < right:
            word = int(rng.integers(2, 7))
            img[y : y + 2, x : min(right, x + word)] = rng.integers(0, 80)
            x += word + int(rng.integers(1, 3))
        y += int(rng.integers(4, 6))


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = (
        rng.uniform(40, 200, 3)
        + xx[..., None] * rng.uniform(-3, 3, 3)
        + yy[..., None] * rng.uniform(-3, 3, 3)
    )
    cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, max(4, h / 2))
    img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None] * rng.uniform(-90, 90, 3)
    return np.clip(img, 0, 255)


def _form(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.full((h, w, 3), 250.0)
    step = int(rng.integers(4, 7))
    img[::step, :, :] = 60
    img[:, :: int(rng.integers(6, 12)), :] = 60
    img[-1, :, :] = img[:, -1, :] = 60
    return img


def composite_pages(n_per_class: int, seed: int) -> Pages:
    """``n_per_class`` pages of each class, shuffled; the pasted region covers 20-45 % of each side."""
    rng = np.random.default_rng(seed)
    images, labels, boxes = [], [], []
    for index, name in enumerate(CLASSES):
        for _ in range(n_per_class):
            img = np.full((SIZE, SIZE, 3), float(rng.integers(225, 256)))
            _text(rng, img, 0, 0, SIZE, SIZE)
            box = (-1, -1, -1, -1)
            if name != "text":
                h, w = (int(rng.integers(int(0.2 * SIZE), int(0.45 * SIZE) + 1)) for _ in range(2))
                top, left = int(rng.integers(0, SIZE - h + 1)), int(rng.integers(0, SIZE - w + 1))
                img[top : top + h, left : left + w] = (
                    _photo(rng, h, w) if name == "photo" else _form(rng, h, w)
                )
                box = (top, left, top + h, left + w)
            images.append(img)
            labels.append(index)
            boxes.append(box)
    order = rng.permutation(len(images))
    return Pages(np.asarray(images, np.float32)[order], np.asarray(labels)[order], np.asarray(boxes)[order])


def peak_inside(cam: np.ndarray, box: np.ndarray) -> bool:
    """Whether the centre of the map's strongest cell lies inside the region (top, left, bottom, right)."""
    rows, cols = cam.shape
    r, c = np.unravel_index(int(np.argmax(cam)), cam.shape)
    y, x = (r + 0.5) * SIZE / rows, (c + 0.5) * SIZE / cols
    return bool(box[0] <= y < box[2] and box[1] <= x < box[3])


@dataclass(frozen=True)
class PointingResult:
    seed: int
    cam_shape: tuple[int, int]
    accuracy: float
    rate: float  # share of composite pages whose class map (the exported cam) peaks inside the region
    rate_per_class: dict[str, float]
    last_block_rate: float  # the same for the last block's own map (features @ dense kernel)
    pages: int
    test: Pages
    cams: np.ndarray  # N x rows x cols x classes


def _settle_batch_norm(clf: Any, images: np.ndarray) -> None:
    """Set the BatchNorm layers' moving statistics to those of the training pages: after a few hundred
    steps their moving averages still lag, and the model answers one class for every page."""
    norms = [
        layer for layer in clf.features._flatten_layers() if type(layer).__name__ == "BatchNormalization"
    ]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    clf.features(images, training=True)
    for layer, momentum in zip(norms, momenta, strict=True):
        layer.momentum = momentum


def measure(
    seed: int, train_per_class: int = 200, test_per_class: int = 60, epochs: int = 8
) -> PointingResult:
    """Train the default small CNN on composite pages with ``seed``, then measure the pointing rate."""
    tf = import_tensorflow(seed=seed)
    train = composite_pages(train_per_class, seed)
    test = composite_pages(test_per_class, seed + 10_000)
    clf = build_classifier("small-cnn", SIZE, len(CLASSES), dropout=0.3)
    clf.model.compile(optimizer=tf.keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])  # fmt: skip
    clf.model.fit(train.images, train.labels, epochs=epochs, batch_size=32, verbose=0)
    _settle_batch_norm(clf, train.images)
    fit_cam_readout(clf, train.images, train.labels)
    serve, _ = serving_function(clf)
    out = serve(test.images)
    cams, probs = out["cam"].numpy(), out["probs"].numpy()
    last = np.tensordot(clf.features.predict(test.images, verbose=0), clf.dense.kernel.numpy(), axes=1)
    composite = np.flatnonzero(test.labels > 0)

    def hits_of(maps: np.ndarray) -> np.ndarray:
        return np.array([peak_inside(maps[i, :, :, test.labels[i]], test.boxes[i]) for i in composite])

    hits = hits_of(cams)
    labels = test.labels[composite]
    per_class = {CLASSES[k]: float(np.mean(hits[labels == k])) for k in range(1, len(CLASSES))}
    return PointingResult(
        seed=seed,
        cam_shape=(int(cams.shape[1]), int(cams.shape[2])),
        accuracy=float(np.mean(np.argmax(probs, axis=1) == test.labels)),
        rate=float(np.mean(hits)),
        rate_per_class=per_class,
        last_block_rate=float(np.mean(hits_of(last))),
        pages=len(composite),
        test=test,
        cams=cams,
    )


def draw(results: list[PointingResult], path: Path, examples: int = 8) -> None:
    """Example composite pages with their class map and peak, and the pointing rate per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    first = results[0]
    picks = np.flatnonzero(first.test.labels > 0)[:examples]
    fig, axes = plt.subplots(2, examples // 2 + 1, figsize=(2.2 * (examples // 2 + 1), 4.8))
    for ax, i in zip(axes[:, :-1].ravel(), picks, strict=False):
        label = int(first.test.labels[i])
        cam = first.cams[i, :, :, label]
        ax.imshow(first.test.images[i].astype(np.uint8))
        ax.imshow(cam, cmap="inferno", alpha=0.45, extent=(0, SIZE, SIZE, 0), interpolation="bilinear")
        top, left, bottom, right = first.test.boxes[i]
        ax.add_patch(
            patches.Rectangle((left, top), right - left, bottom - top, fill=False, ec="cyan", lw=1.5)
        )
        r, c = np.unravel_index(int(np.argmax(cam)), cam.shape)
        hit = peak_inside(cam, first.test.boxes[i])
        ax.plot((c + 0.5) * SIZE / cam.shape[1], (r + 0.5) * SIZE / cam.shape[0], "o",
                color="lime" if hit else "red", ms=6, mec="black")  # fmt: skip
        ax.set_title(CLASSES[label], fontsize=9)
        ax.axis("off")
    gs = axes[0, -1].get_gridspec()
    for ax in axes[:, -1]:
        ax.remove()
    bar = fig.add_subplot(gs[:, -1])
    seeds = np.arange(len(results))
    bar.bar(seeds - 0.2, [100 * r.last_block_rate for r in results], 0.4, color="#9aa5b1", label="last block")
    bar.bar(seeds + 0.2, [100 * r.rate for r in results], 0.4, color="#2f5fb3", label="exported (read-out)")
    bar.set_xticks(seeds, [str(r.seed) for r in results])
    bar.legend(fontsize=7, loc="lower right")
    bar.axhline(90, color="#b42318", ls="--", lw=1)
    bar.set_ylim(0, 100)
    bar.set_xlabel("seed")
    bar.set_ylabel("peak inside the region (%)")
    for k, result in enumerate(results):
        bar.text(k + 0.2, 100 * result.rate + 1, f"{100 * result.rate:.0f}%", ha="center", fontsize=8)
        bar.text(k - 0.2, 100 * result.last_block_rate + 1, f"{100 * result.last_block_rate:.0f}%",
                 ha="center", fontsize=7)  # fmt: skip
    rows, cols = first.cam_shape
    title = f"CAM pointing on composite pages (small CNN, {SIZE} px, {rows}x{cols} map)"
    fig.suptitle(f"{title}: cyan = deciding region, dot = the map's peak", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("docs/review_pointing.png"))
    args = parser.parse_args()
    results = [measure(seed) for seed in args.seeds]
    for r in results:
        print(
            f"seed {r.seed}: map {r.cam_shape}, accuracy {r.accuracy:.3f}, pointing {r.rate:.3f} "
            f"(last block {r.last_block_rate:.3f}) of {r.pages}"
        )
    draw(results, args.out)


if __name__ == "__main__":
    main()
