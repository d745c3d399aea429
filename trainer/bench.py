"""Benchmarks of the trainer (not tests). ``python -m trainer.bench head-cache --help``.

``head-cache``: the epoch time of training the head on backbone features computed once, against the
usual epoch that runs the frozen backbone over every image, measured side by side in one process on the
same images, model and batch size, and printed as a ratio.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from trainer.data import decode_examples, scan_folder
from trainer.tfsetup import import_tensorflow


def _images(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    size = (args.image_size, args.image_size)
    if args.data_dir:
        scan = scan_folder(args.data_dir)
        rng = np.random.default_rng(args.seed)
        picked = rng.permutation(len(scan.files))[: args.images]
        ex = decode_examples([scan.files[i] for i in sorted(picked)], size, progress=False)
        order = rng.permutation(len(ex))  # mix the classes before the validation cut
        return ex.images[order], ex.labels[order], f"{len(ex)} pages of {args.data_dir}"
    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, (args.images, *size, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, args.images)
    return images, labels, f"{args.images} generated {size[0]}×{size[1]} images"


def _epoch_times(model: Any, train_ds: Any, val_ds: Any, epochs: int) -> list[float]:
    import keras  # TensorFlow: already set up by head_cache

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []
            self.t0 = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.times.append(time.perf_counter() - self.t0)

    timer = Timer()
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        train_ds, validation_data=val_ds, epochs=epochs + 1, verbose=0, shuffle=False, callbacks=[timer]
    )
    return timer.times[1:]  # the first epoch also traces the graph


def head_cache(args: argparse.Namespace) -> dict[str, Any]:
    import_tensorflow(args.threads, args.seed)
    # These import Keras: only now that import_tensorflow has set threads, seed and quiet start-up.
    from trainer.backbones import build_classifier
    from trainer.pipeline import make_dataset, make_feature_dataset

    images, labels, what = _images(args)
    n_val = max(1, int(len(images) * 0.2))
    x_train, y_train, x_val, y_val = images[n_val:], labels[n_val:], images[:n_val], labels[:n_val]
    clf = build_classifier(args.backbone, args.image_size, 2, args.weights)
    clf.features.trainable = False
    bs = args.batch_size
    frozen = _epoch_times(
        clf.model,
        make_dataset(x_train, y_train, bs, shuffle=True, seed=args.seed),
        make_dataset(x_val, y_val, bs),
        args.epochs,
    )
    t0 = time.perf_counter()
    f_train = clf.pooled.predict(make_dataset(x_train, None, bs), verbose=0)
    f_val = clf.pooled.predict(make_dataset(x_val, None, bs), verbose=0)
    extract = time.perf_counter() - t0
    cached = _epoch_times(
        clf.head,
        make_feature_dataset(f_train, y_train, bs, shuffle=True, seed=args.seed),
        make_feature_dataset(f_val, y_val, bs),
        args.epochs,
    )
    frozen_epoch, cached_epoch = statistics.median(frozen), statistics.median(cached)
    return {
        "backbone": args.backbone,
        "image_size": args.image_size,
        "data": what,
        "train_images": len(x_train),
        "val_images": len(x_val),
        "batch_size": bs,
        "epochs_timed": args.epochs,
        "frozen_epoch_s": frozen_epoch,
        "cached_epoch_s": cached_epoch,
        "feature_extraction_s": extract,
        "ratio": frozen_epoch / cached_epoch,
        "break_even_epochs": math.ceil(extract / max(frozen_epoch - cached_epoch, 1e-9)),
        "machine": machine_description(args.threads),
    }


def machine_description(threads: int | None = None) -> str:
    import tensorflow as tf  # the `train` extra: only for its version number

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    used = threads or int(os.environ.get("DOCSORT_TF_THREADS", "0") or 0) or os.cpu_count()
    python = sys.version.split()[0]
    cores = f"{os.cpu_count()} cores ({used} TensorFlow threads)"
    return f"{cpu}, {cores}, TensorFlow {tf.__version__}, Python {python}"


def format_head_cache(result: dict[str, Any]) -> str:
    rows = [
        ("usual epoch (frozen backbone over every image)", f"{result['frozen_epoch_s']:.2f} s"),
        ("epoch on cached features (head only)", f"{result['cached_epoch_s']:.3f} s"),
        ("one-off feature extraction (train + validation)", f"{result['feature_extraction_s']:.2f} s"),
        ("ratio usual / cached", f"{result['ratio']:.1f}×"),
        ("cache pays for itself after", f"{result['break_even_epochs']} epoch(s)"),
    ]
    head = (
        f"{result['backbone']} at {result['image_size']} px, {result['train_images']} training + "
        f"{result['val_images']} validation images ({result['data']}), batch {result['batch_size']}, "
        f"median of {result['epochs_timed']} epochs after a warm-up epoch\nmachine: {result['machine']}"
    )
    table = "\n".join(f"| {a} | {b} |" for a, b in rows)
    return f"{head}\n\n| measure | value |\n|---|---|\n{table}\nratio: {result['ratio']:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    hc = sub.add_parser("head-cache", help="head on cached features vs frozen-backbone epochs")
    hc.add_argument("--backbone", default="vgg16", choices=["small-cnn", "vgg16", "xception"])
    hc.add_argument("--image-size", type=int, default=96)
    hc.add_argument("--images", type=int, default=640, help="images in all (20%% for validation)")
    hc.add_argument("--epochs", type=int, default=3, help="epochs timed after one warm-up epoch")
    hc.add_argument("--batch-size", type=int, default=32)
    hc.add_argument("--weights", default="none", help="none | imagenet | a weights file (timing only)")
    hc.add_argument("--data-dir", type=Path, default=None, help="time on pages of this labelled folder")
    hc.add_argument("--threads", type=int, default=None)
    hc.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    print(format_head_cache(head_cache(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
