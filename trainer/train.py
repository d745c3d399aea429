"""``docsort train``: decode once, set TensorFlow up, train in phases (:mod:`trainer.fit`), keep the
best epoch, export a model version folder (:mod:`trainer.publish`).

This module imports no TensorFlow itself: the Keras modules are imported once
:func:`trainer.tfsetup.import_tensorflow` has fixed the thread count and the seed.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from schema.logs import get_logger
from trainer.data import prepare_data
from trainer.errors import TrainerError
from trainer.recipe import TrainOptions
from trainer.tfsetup import import_tensorflow

log = get_logger(__name__)


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
        # These import Keras: only now that import_tensorflow has set threads, seed and quiet start-up.
        from trainer.fit import Trainer
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
