"""Default training recipes per backbone and the options of one training run (no TensorFlow here)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

BackboneName = Literal["small-cnn", "vgg16", "xception"]


@dataclass(frozen=True)
class Recipe:
    image_size: int
    epochs: int  # from scratch: all epochs; pretrained: phase 1 (head on the frozen backbone)
    fine_tune_epochs: int  # pretrained only: phase 2 (top blocks at a low learning rate)
    weights: str
    learning_rate: float
    fine_tune_learning_rate: float
    batch_size: int = 64
    dropout: float = 0.3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1
    patience: int = 10  # EarlyStopping on validation loss (lets the cosine tail run: its epochs count most)


# small-cnn: tuned on real text/non-text crops on a 2-core CPU (see docs/training.md).
RECIPES: dict[str, Recipe] = {
    "small-cnn": Recipe(
        image_size=64, epochs=20, fine_tune_epochs=0, weights="none", learning_rate=3e-3,
        fine_tune_learning_rate=3e-4,
    ),
    "vgg16": Recipe(
        image_size=224, epochs=8, fine_tune_epochs=4, weights="imagenet", learning_rate=1e-3,
        fine_tune_learning_rate=1e-5, batch_size=32, dropout=0.5,
    ),
    "xception": Recipe(
        image_size=299, epochs=8, fine_tune_epochs=4, weights="imagenet", learning_rate=1e-3,
        fine_tune_learning_rate=1e-5, batch_size=32, dropout=0.5,
    ),
}  # fmt: skip


@dataclass
class TrainOptions:
    """One ``docsort train`` run. ``None`` means: the backbone's recipe default."""

    data_dir: Path
    models_dir: Path
    name: str = "docsort"
    backbone: str = "small-cnn"
    image_size: int | None = None
    epochs: int | None = None
    fine_tune_epochs: int | None = None
    weights: str | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    seed: int = 42
    augment: bool = True
    resize: Literal["letterbox", "stretch"] = "letterbox"
    class_weighting: bool = True
    threads: int | None = None
    cache_dir: Path | None = None
    progress: bool = True
    confidence: float = 0.9  # the confidence threshold until calibration chooses one
    auto_accuracy: float = 0.995  # target accuracy of automatically routed pages
    confidence_level: float | None = 0.95  # of the thresholds' guarantee; None: a point estimate
    extra: dict[str, str] = field(default_factory=dict)

    def recipe(self) -> Recipe:
        base = RECIPES[self.backbone]
        overrides = {
            "image_size": self.image_size,
            "epochs": self.epochs,
            "fine_tune_epochs": self.fine_tune_epochs,
            "weights": self.weights,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
        }
        chosen: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **chosen)
