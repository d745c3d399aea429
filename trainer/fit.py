"""One training run's phases on prepared data (Keras): imported only once TensorFlow is set up.

From scratch (``--weights none``, the small CNN's default) there is one phase: the whole network trains
with a warm-up + cosine learning-rate schedule. With pretrained weights (``imagenet`` or a file),
phase 1 trains the head on the frozen backbone (on backbone features computed once when augmentation is
off) and phase 2 fine-tunes the top blocks at a low learning rate.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import keras

from schema.logs import get_logger
from trainer.augment import DocumentAugment
from trainer.backbones import build_classifier, set_fine_tune
from trainer.callbacks import EpochLog, KeepBest, ProgressBar
from trainer.data import PreparedData, class_weights
from trainer.pipeline import make_dataset, make_feature_dataset
from trainer.recipe import Recipe, TrainOptions

log = get_logger(__name__)


class Trainer:
    """Runs the phases of one training run on prepared data."""

    def __init__(self, opts: TrainOptions, recipe: Recipe, data: PreparedData, report_dir: Path) -> None:
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
        total = max(1, steps_per_epoch * epochs)
        warmup = int(total * self.recipe.warmup_fraction)
        schedule = keras.optimizers.schedules.CosineDecay(
            lr * 0.1 if warmup else lr, total - warmup, alpha=0.01, warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )  # fmt: skip
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=self.recipe.weight_decay)
        model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])

    def _fit(self, model, phase: str, train_ds, val_ds, steps: int, epochs: int, lr: float) -> None:
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
        if not self.opts.augment:
            return self.clf.model
        image = keras.Input(self.clf.model.input.shape[1:], name="image")
        augmented = DocumentAugment(seed=self.opts.seed, name="augment")(image)
        return keras.Model(image, self.clf.model(augmented), name="training")

    def _fit_images(self, phase: str, epochs: int, lr: float) -> None:
        bs = self.recipe.batch_size
        train_ds = make_dataset(
            self.data.train.images, self.data.train.labels, bs, shuffle=True, seed=self.opts.seed
        )
        val_ds = make_dataset(self.data.val.images, self.data.val.labels, 128)
        steps = math.ceil(len(self.data.train) / bs)
        self._fit(self._training_model(), phase, train_ds, val_ds, steps, epochs, lr)

    def _fit_cached_features(self, epochs: int, lr: float) -> None:
        """Phase 1 without augmentation: backbone features once, then epochs over the head alone."""
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
