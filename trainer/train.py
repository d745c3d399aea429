"""``docsort train``: decode once, train in phases, keep the best epoch, export a model version folder.

From scratch (``--weights none``, the small CNN's default) there is one phase: the whole network trains
with a warm-up + cosine learning-rate schedule. With pretrained weights (``imagenet`` or a file),
phase 1 trains the head on the frozen backbone (on backbone features computed once when augmentation is
off) and phase 2 fine-tunes the top blocks at a low learning rate.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schema.logs import get_logger
from trainer.data import Examples, FolderScan, Split, class_weights, decode_cached, scan_folder, split_files
from trainer.errors import TrainerError
from trainer.recipe import Recipe, TrainOptions
from trainer.tfsetup import import_tensorflow

log = get_logger(__name__)


@dataclass
class PreparedData:
    scan: FolderScan
    split: Split
    train: Examples
    val: Examples
    test: Examples | None

    @property
    def unreadable(self) -> list[dict[str, str]]:
        parts = [self.train, self.val] + ([self.test] if self.test is not None else [])
        return [u for part in parts for u in part.unreadable]


def prepare_data(opts: TrainOptions, recipe: Recipe) -> PreparedData:
    """Scan, split by seed and decode every page once (through worker.imaging) into uint8 arrays."""
    scan = scan_folder(opts.data_dir)
    split = split_files(scan.files, opts.val_fraction, opts.test_fraction, opts.seed)
    size = (recipe.image_size, recipe.image_size)

    def decode(files, desc):
        return decode_cached(files, size, opts.resize, 255, opts.cache_dir, desc=desc, progress=opts.progress)

    train, val = decode(split.train, "decode train"), decode(split.val, "decode validation")
    test = decode(split.test, "decode test") if split.test else None
    for part, examples in (("training", train), ("validation", val)):
        present = set(np.unique(examples.labels).tolist())
        missing = [n for i, n in enumerate(scan.class_names) if i not in present]
        if missing:
            raise TrainerError(f"{opts.data_dir}: no readable {part} examples of class(es) {missing}")
    return PreparedData(scan, split, train, val, test)


class Trainer:
    """Runs the phases of one training run on prepared data."""

    def __init__(self, opts: TrainOptions, recipe: Recipe, data: PreparedData, report_dir: Path) -> None:
        from trainer.backbones import build_classifier
        from trainer.callbacks import EpochLog, KeepBest

        self.opts, self.recipe, self.data = opts, recipe, data
        self.clf = build_classifier(
            opts.backbone, recipe.image_size, len(data.scan.class_names), recipe.weights, recipe.dropout
        )
        self.keep_best = KeepBest(self.clf.model)
        self.epoch_log = EpochLog(report_dir / "history.csv")
        n_classes = len(data.scan.class_names)
        self.class_weight = class_weights(data.train.labels, n_classes) if opts.class_weighting else None
        self.phases: list[dict[str, Any]] = []

    def run(self) -> None:
        from trainer.backbones import set_fine_tune

        if self.recipe.weights == "none":
            self.clf.features.trainable = True
            self._fit_images("train", self.recipe.epochs, self.recipe.learning_rate)
        else:
            self.clf.features.trainable = False
            if self.opts.augment:
                self._fit_images("head", self.recipe.epochs, self.recipe.learning_rate)
            else:
                self._fit_cached_features(self.recipe.epochs, self.recipe.learning_rate)
            if self.recipe.fine_tune_epochs > 0:
                self.keep_best.restore()
                if set_fine_tune(self.clf, True) == 0:
                    log.warning(
                        "fine_tune_skipped", reason="no top-block layers found", backbone=self.opts.backbone
                    )
                else:
                    lr = self.recipe.fine_tune_learning_rate
                    self._fit_images("fine-tune", self.recipe.fine_tune_epochs, lr)
        self.keep_best.restore()

    def _compile(self, model, steps_per_epoch: int, epochs: int, lr: float) -> None:
        import keras

        total = max(1, steps_per_epoch * epochs)
        warmup = int(total * self.recipe.warmup_fraction)
        schedule = keras.optimizers.schedules.CosineDecay(
            lr * 0.1 if warmup else lr, total - warmup, alpha=0.01, warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )  # fmt: skip
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=self.recipe.weight_decay)
        model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])

    def _fit(self, model, phase: str, train_ds, val_ds, steps: int, epochs: int, lr: float) -> None:
        import keras

        from trainer.callbacks import ProgressBar

        self._compile(model, steps, epochs, lr)
        offset = len(self.epoch_log.rows)
        for cb in (self.keep_best, self.epoch_log):
            cb.phase, cb.epoch_offset = phase, offset
        stop = keras.callbacks.EarlyStopping(
            "val_loss", patience=self.recipe.patience, restore_best_weights=False
        )
        started = time.perf_counter()
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            shuffle=False,  # the dataset reshuffles itself each epoch, from the seed
            class_weight=self.class_weight,
            verbose=0,
            callbacks=[ProgressBar(steps, self.opts.progress, phase), self.epoch_log, self.keep_best, stop],
        )
        ran = len(history.history.get("loss", []))
        self.phases.append(
            {"phase": phase, "epochs": ran, "planned_epochs": epochs, "learning_rate": lr,
             "seconds": round(time.perf_counter() - started, 2)}
        )  # fmt: skip

    def _training_model(self):
        import keras

        if not self.opts.augment:
            return self.clf.model
        from trainer.augment import DocumentAugment

        image = keras.Input(self.clf.model.input.shape[1:], name="image")
        augmented = DocumentAugment(seed=self.opts.seed, name="augment")(image)
        return keras.Model(image, self.clf.model(augmented), name="training")

    def _fit_images(self, phase: str, epochs: int, lr: float) -> None:
        from trainer.pipeline import make_dataset

        bs = self.recipe.batch_size
        train_ds = make_dataset(
            self.data.train.images, self.data.train.labels, bs, shuffle=True, seed=self.opts.seed
        )
        val_ds = make_dataset(self.data.val.images, self.data.val.labels, 128)
        steps = math.ceil(len(self.data.train) / bs)
        self._fit(self._training_model(), phase, train_ds, val_ds, steps, epochs, lr)

    def _fit_cached_features(self, epochs: int, lr: float) -> None:
        """Phase 1 without augmentation: backbone features once, then epochs over the head alone."""
        from trainer.pipeline import make_dataset, make_feature_dataset

        started = time.perf_counter()
        feats = {
            name: self.clf.pooled.predict(make_dataset(part.images, None, 64), verbose=0)
            for name, part in (("train", self.data.train), ("val", self.data.val))
        }
        seconds = round(time.perf_counter() - started, 2)
        log.info("backbone_features_cached", seconds=seconds, train=feats["train"].shape)
        bs = self.recipe.batch_size
        train_ds = make_feature_dataset(
            feats["train"], self.data.train.labels, bs, shuffle=True, seed=self.opts.seed
        )
        val_ds = make_feature_dataset(feats["val"], self.data.val.labels, 256)
        steps = math.ceil(len(self.data.train) / bs)
        self._fit(self.clf.head, "head (cached features)", train_ds, val_ds, steps, epochs, lr)
        self.phases[-1]["feature_seconds"] = seconds


def train(opts: TrainOptions) -> Path:
    """Train, evaluate and export; return the new version folder."""
    if opts.backbone not in ("small-cnn", "vgg16", "xception"):
        raise TrainerError(f"unknown backbone {opts.backbone!r}; choose small-cnn, vgg16 or xception")
    recipe = opts.recipe()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    models_dir = Path(opts.models_dir) / opts.name
    models_dir.mkdir(parents=True, exist_ok=True)
    build_dir = models_dir / f".building-{uuid.uuid4().hex[:12]}"
    (build_dir / "report").mkdir(parents=True)
    try:
        data = prepare_data(opts, recipe)
        log.info(
            "data_ready", train=len(data.train), val=len(data.val), unreadable=len(data.unreadable),
            classes=data.scan.class_names, seconds=round(time.perf_counter() - wall0, 1),
        )  # fmt: skip
        import_tensorflow(opts.threads, opts.seed)
        from trainer.publish import publish_version

        trainer = Trainer(opts, recipe, data, build_dir / "report")
        trainer.run()
        timing = {"wall_seconds": time.perf_counter() - wall0, "cpu_seconds": time.process_time() - cpu0}
        info = {
            "recipe": asdict(recipe),
            "phases": trainer.phases,
            "best_epoch": trainer.keep_best.best_epoch,
        }
        return publish_version(
            build_dir, models_dir, trainer.clf, opts, data, trainer.epoch_log.rows, info, timing
        )
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
