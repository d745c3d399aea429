"""Commands of this package (added to ``docsort`` by ``register``): ``train`` and ``evaluate``.

TensorFlow is imported inside ``train`` only; ``evaluate`` runs the exported ONNX model and needs none.
Every ``docsort`` command imports this module, so the modules that load TensorFlow or onnx are
imported inside the commands that need them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from schema import db
from schema.logs import configure_logging
from schema.manifest import load_manifest
from schema.settings import get_settings
from trainer.compare import comparison_table
from trainer.evaluate import evaluate_folder
from trainer.extras import require_extra
from trainer.loop import PROVENANCE_FILE, run_loop
from trainer.metrics import format_report
from trainer.recipe import TrainOptions
from trainer.train import train


class Backbone(StrEnum):
    small_cnn = "small-cnn"
    vgg16 = "vgg16"
    xception = "xception"


class Activation(StrEnum):
    auto = "auto"
    always = "always"
    never = "never"


class Resize(StrEnum):
    letterbox = "letterbox"
    stretch = "stretch"


# Shared by `train`, `models retarget` and `models calibrate`.
AUTO_ACCURACY = typer.Option(
    0.995, "--auto-accuracy", min=0.5, max=1.0, help="Accuracy required of automatically routed pages."
)
CONFIDENCE = typer.Option(
    0.95,
    "--confidence",
    min=0.0,
    max=0.9999,
    help="Probability that routed pages meet --auto-accuracy (0: point estimate, no guarantee).",
)


def confidence_level(confidence: float) -> float | None:
    """``--confidence`` as the thresholds take it: 0 means a point estimate (None)."""
    return confidence if confidence > 0 else None


def train_command(
    data_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="One subfolder per class."),
    models_dir: Path = typer.Option(..., "--models-dir", help="Where models/<name>/<version>/ is written."),
    name: str = typer.Option(
        None, "--name", help="Model name, a folder under --models-dir (default: docsort; the active's)."
    ),
    backbone: Backbone = typer.Option(Backbone.small_cnn, "--backbone", help="Network to train."),
    image_size: int | None = typer.Option(
        None,
        "--image-size",
        min=16,
        help="Square input side (default: small-cnn 64, vgg16 224, xception 299).",
    ),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        min=1,
        help="From scratch: all epochs; pretrained: head epochs (default: the recipe's).",
    ),
    fine_tune_epochs: int | None = typer.Option(
        None, "--fine-tune-epochs", min=0, help="Pretrained only: epochs fine-tuning the top blocks."
    ),
    weights: str | None = typer.Option(
        None,
        "--weights",
        help="imagenet | none | a weights file (default: none for small-cnn, else imagenet).",
    ),
    val_fraction: float = typer.Option(0.2, "--val-fraction", min=0.01, max=0.9),
    test_fraction: float = typer.Option(
        0.0, "--test-fraction", min=0.0, max=0.9, help="Optional test split."
    ),
    seed: int = typer.Option(42, "--seed", help="Split, initialisation and shuffling seed."),
    augment: bool = typer.Option(
        True, "--augment/--no-augment", help="Document augmentation while training."
    ),
    resize: Resize = typer.Option(
        Resize.letterbox, "--resize", help="Keep the aspect ratio (pad) or stretch."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1),
    learning_rate: float | None = typer.Option(None, "--learning-rate", min=0.0),
    class_weights: bool = typer.Option(True, "--class-weights/--no-class-weights", help="Balance the loss."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for TensorFlow."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Keep decoded pages here between runs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    int8: bool = typer.Option(False, "--int8", help="Also write a static INT8 model (trainer.quantize)."),
    auto_accuracy: float = AUTO_ACCURACY,
    confidence: float = CONFIDENCE,
    from_reviews: bool = typer.Option(
        False,
        "--from-reviews",
        help="First add operator-labelled pages (with provenance.jsonl) to DATA_DIR; then compare the new "
        "version with the active one on held-out pages and activate it if better.",
    ),
    activate: Activation = typer.Option(
        Activation.auto,
        "--activate",
        help="With --from-reviews: auto (when better by the rule), always, never.",
    ),
    since: datetime | None = typer.Option(
        None,
        "--since",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
        help="With --from-reviews: only answers given at or after this time (UTC).",
    ),
) -> None:
    """Train, evaluate and export a model version; the last line printed is its folder."""
    require_extra("train", "train")
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    opts = TrainOptions(
        data_dir=data_dir,
        models_dir=models_dir,
        name=name or "docsort",
        backbone=backbone.value,
        image_size=image_size,
        epochs=epochs,
        fine_tune_epochs=fine_tune_epochs,
        weights=weights,
        learning_rate=learning_rate,
        batch_size=batch_size,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        augment=augment,
        resize=resize.value,
        class_weighting=class_weights,
        threads=threads,
        cache_dir=cache_dir,
        progress=not quiet,
        auto_accuracy=auto_accuracy,
        confidence_level=confidence_level(confidence),
    )
    if from_reviews:
        version_dir = _from_reviews(opts, name, activate, since, settings.database_url)
    else:
        version_dir = train(opts)
    if int8:  # INT8 beside FP32, calibrated on this run's training pages; the manifest says which to load
        from trainer.quantize import quantize_version  # imports onnx (the `train` extra)

        typer.echo(f"INT8: {quantize_version(version_dir, data_dir, progress=not quiet).note}")
    _print_summary(version_dir)
    typer.echo(str(version_dir))


def _from_reviews(
    opts: TrainOptions, name: str | None, mode: Activation, since: datetime | None, database_url: str
) -> Path:
    db.require_migrated(database_url)
    sessions = db.make_sessionmaker(db.make_engine(database_url))
    since_utc = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    outcome = run_loop(opts, sessions, model_name=name, mode=mode.value, since=since_utc)
    added = outcome.added
    per_class = ", ".join(f"{k}: {v}" for k, v in sorted(added.per_class.items())) or "none"
    typer.echo(
        f"operator pages: {added.written} added, {added.unchanged} already there ({per_class}); "
        f"provenance in {opts.data_dir / PROVENANCE_FILE}"
    )
    for skipped in added.skipped:
        typer.echo(f"skipped: {skipped}", err=True)
    if outcome.comparison is not None:
        typer.echo(comparison_table(outcome.comparison))
    typer.echo(outcome.reason)
    return outcome.version_dir


def _print_summary(version_dir: Path) -> None:
    manifest = load_manifest(version_dir)
    metrics, timing = manifest.metrics, manifest.training.extra.get("timing", {})
    unreadable = manifest.training.extra.get("unreadable", 0)
    typer.echo(
        f"validation accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f} "
        f"on {metrics['n']} pages; {unreadable} unreadable file(s) skipped (report/unreadable.json); "
        f"wall {timing.get('total_wall_seconds', 0):.0f} s, CPU {timing.get('cpu_seconds', 0):.0f} s"
    )


def evaluate_command(
    data_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="One subfolder per class."),
    model: Path = typer.Option(..., "--model", exists=True, file_okay=False, help="Model version folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last line."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="ONNX Runtime threads."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run an exported model (ONNX Runtime) over a labelled folder and report its metrics."""

    report = evaluate_folder(data_dir, model, threads=threads, progress=not quiet)
    typer.echo(format_report(report))
    typer.echo(_auto_line(report))
    for item in report["unreadable"]:
        typer.echo(f"unreadable: {item['path']}: {item['reason']}")
    if as_json:
        typer.echo(json.dumps(report))


def _auto_line(report: dict[str, Any]) -> str:
    if not report["n_auto"]:
        return f"auto-routed: none of {report['n']} pages at the model's thresholds"
    bound, review = report["auto_accuracy_lower_bound"], report["review_rate"]
    return (
        f"auto-routed: {report['n_auto']} of {report['n']} pages (review {100 * review:.2f}%), "
        f"accuracy {100 * report['auto_accuracy']:.2f}%, exact lower bound {100 * bound:.2f}% "
        f"({100 * report['confidence_level']:g}% confidence)"
    )


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
