"""Training callbacks: best-epoch keeping across phases, a CSV log with the phase, a progress bar."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import keras
from tqdm import tqdm

from schema.logs import get_logger

log = get_logger(__name__)


class KeepBest(keras.callbacks.Callback):
    """Remember the weights of the best epoch (highest val accuracy, then lowest val loss) of ``target``.

    One instance spans all phases; :meth:`restore` puts the best weights back at the end.
    """

    def __init__(self, target: keras.Model) -> None:
        super().__init__()
        self.target = target
        self.best: tuple[float, float] | None = None
        self.best_weights: list[Any] | None = None
        self.best_epoch: dict[str, Any] = {}
        self.phase = ""
        self.epoch_offset = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        score = (float(logs.get("val_accuracy", 0.0)), -float(logs.get("val_loss", float("inf"))))
        if self.best is None or score > self.best:
            self.best = score
            self.best_weights = self.target.get_weights()
            self.best_epoch = {
                "phase": self.phase,
                "epoch": self.epoch_offset + epoch + 1,
                "val_accuracy": score[0],
                "val_loss": -score[1],
            }

    def restore(self) -> None:
        if self.best_weights is not None:
            self.target.set_weights(self.best_weights)
            log.info("best_epoch_restored", **self.best_epoch)


class EpochLog(keras.callbacks.Callback):
    """Append one CSV row per epoch (phase, epoch, metrics, learning rate, seconds) and keep the rows."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.phase = ""
        self.epoch_offset = 0
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row: dict[str, Any] = {"phase": self.phase, "epoch": self.epoch_offset + epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        row["lr"] = _current_lr(self.model)
        row["seconds"] = round(time.perf_counter() - self._started, 3)
        self.rows.append(row)
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.rows)
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        log.info("epoch_done", **shown)


class ProgressBar(keras.callbacks.Callback):
    """One tqdm bar per epoch over its batches (stderr), showing loss and accuracy."""

    def __init__(self, steps: int, enabled: bool = True, label: str = "") -> None:
        super().__init__()
        self.steps = steps
        self.enabled = enabled
        self.label = label
        self.bar: tqdm | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.enabled:
            desc = f"{self.label} epoch {epoch + 1}"
            self.bar = tqdm(total=self.steps, desc=desc, leave=False, unit="batch", mininterval=0.5)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.bar is not None:
            logs = logs or {}
            self.bar.set_postfix(
                loss=f"{logs.get('loss', 0.0):.4f}", acc=f"{logs.get('accuracy', 0.0):.4f}", refresh=False
            )
            self.bar.update(1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _current_lr(model: keras.Model) -> float:
    optimizer = model.optimizer
    lr = optimizer.learning_rate
    try:
        return float(keras.ops.convert_to_numpy(lr))
    except (TypeError, ValueError):
        return float(keras.ops.convert_to_numpy(lr(optimizer.iterations)))
