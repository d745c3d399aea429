"""Commands for confidence and unlabelled data: ``docsort export --int8``, ``docsort cluster``,
``docsort models retarget`` and ``docsort models calibrate``.

Every ``docsort`` command imports this module, so the modules that load a heavy dependency (onnx,
onnxruntime quantization, scikit-learn, TensorFlow) are imported inside the commands.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from schema.logs import configure_logging
from schema.settings import get_settings
from trainer.cli import AUTO_ACCURACY, CONFIDENCE, confidence_level
from trainer.confidence import calibrate_version, retarget
from trainer.extras import require_extra, require_modules
from trainer.thresholds import describe


def _logging() -> None:
    """Logs to stderr as the settings say, so stdout holds only the command's own lines."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


def _print_choice(choice: Any, as_json: bool) -> None:
    t = choice.thresholds
    typer.echo(describe(choice.target, choice.review_rate, choice.n, choice.auto_accuracy, t.guarantee))
    for name, detail in choice.per_class.items():
        if detail["threshold"] > 1.0 and detail["predicted_pages"]:
            typer.echo(f"class {name}: no threshold meets the target; its pages go to review")
    per_class = ", ".join(f"{k}={v:.6f}" for k, v in t.per_class.items()) or "none"
    typer.echo(f"thresholds: confidence={t.confidence:.6f} margin={t.margin:.6f} per-class: {per_class}")
    if as_json:
        typer.echo(json.dumps({**choice.metrics(), "thresholds": t.model_dump()}))


def retarget_command(
    version_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Model version folder."),
    auto_accuracy: float = AUTO_ACCURACY,
    confidence: float = CONFIDENCE,
    refit_temperature: bool = typer.Option(False, "--refit-temperature", help="Fit the temperature again."),
    min_class_pages: int = typer.Option(
        0,
        "--min-class-pages",
        min=0,
        help="Pages a class needs for its own threshold (0: none with a guarantee, by the target without).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Also print one JSON object as the last line."),
) -> None:
    """Choose review thresholds for a new target from the stored validation scores (no training).

    Rewrites manifest.json only (atomically); model.onnx is untouched.
    """
    _logging()

    choice = retarget(
        version_dir,
        auto_accuracy,
        confidence_level=confidence_level(confidence),
        refit_temperature=refit_temperature,
        min_class_pages=min_class_pages or None,
    )
    _print_choice(choice, as_json)


def calibrate_command(
    version_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Model version folder."),
    data: Path = typer.Option(
        ..., "--data", exists=True, file_okay=False, help="The labelled folder it was trained on."
    ),
    auto_accuracy: float = AUTO_ACCURACY,
    confidence: float = CONFIDENCE,
    as_json: bool = typer.Option(False, "--json", help="Also print one JSON object as the last line."),
) -> None:
    """Score the version's validation split with its ONNX model, fit the temperature, choose thresholds.

    For versions made before calibration ran at training time; rewrites manifest.json only.
    """
    require_modules(("onnx",), "models calibrate")
    _logging()

    choice = calibrate_version(version_dir, data, auto_accuracy, confidence_level(confidence))
    _print_choice(choice, as_json)


def export_command(
    version_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Model version folder."),
    int8: bool = typer.Option(False, "--int8", help="Write a statically quantized INT8 model beside FP32."),
    calib_dir: Path = typer.Option(
        None,
        "--calib-dir",
        exists=True,
        file_okay=False,
        help="The labelled folder the version was trained on.",
    ),
    calib_images: int = typer.Option(200, "--calib-images", min=1, help="Training pages for calibration."),
    min_agreement: float = typer.Option(0.99, "--min-agreement", min=0.0, max=1.0),
    keep_fp32: bool = typer.Option(False, "--keep-fp32", help="Write INT8 but keep the worker on FP32."),
    as_json: bool = typer.Option(False, "--json", help="Also print one JSON object as the last line."),
) -> None:
    """Export an existing version again in another form: --int8 writes a static INT8 (QDQ) model."""
    if not int8:
        typer.echo(
            "error: nothing to export: pass --int8 (the FP32 export is part of `docsort train`)", err=True
        )
        raise typer.Exit(code=2)
    if calib_dir is None:
        typer.echo(
            "error: --int8 needs --calib-dir DATA_DIR (the version's labelled training folder)", err=True
        )
        raise typer.Exit(code=2)
    require_modules(("onnx",), "export --int8")
    _logging()
    from trainer.quantize import quantize_version  # imports onnx (the `train` extra)

    report = quantize_version(
        version_dir, calib_dir, n_calib=calib_images, min_agreement=min_agreement, prefer_int8=not keep_fp32
    )
    typer.echo(f"{'usable' if report.usable else 'NOT USABLE'}: {report.note}")
    typer.echo(
        "review rate at the target: FP32 {:.2f}%, INT8 {:.2f}%; ms/page FP32 {:.2f}, INT8 {:.2f}".format(
            100 * report.review_rate["fp32"],
            100 * report.review_rate["int8"],
            report.latency_ms_per_page["fp32"],
            report.latency_ms_per_page["int8"],
        )
    )
    if as_json:
        typer.echo(json.dumps(asdict(report)))
    typer.echo(str(version_dir / report.file))


def cluster_command(
    in_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of unlabelled pages."),
    out_dir: Path = typer.Argument(..., help="New folder for cluster_NN/ folders and contact sheets."),
    k: int = typer.Option(..., "--k", min=2, help="Number of clusters."),
    model: Path = typer.Option(
        None, "--model", exists=True, file_okay=False, help="Version folder to embed with."
    ),
    backbone: str = typer.Option(
        "vgg16", "--backbone", help="Without --model: small-cnn, vgg16 or xception."
    ),
    weights: str = typer.Option("imagenet", "--weights", help="Without --model: imagenet, none or a file."),
    image_size: int = typer.Option(
        0, "--image-size", min=0, help="Without --model: input size (0: default)."
    ),
    seed: int = typer.Option(0, "--seed"),
    link: bool = typer.Option(False, "--link", help="Hard-link files instead of copying them."),
) -> None:
    """Cluster unlabelled pages by the backbone's features: one folder and one contact sheet per cluster."""
    require_modules(("onnx", "sklearn"), "cluster")
    _logging()
    from trainer.cluster import cluster_folder  # imports scikit-learn in its turn
    from trainer.embed import keras_embedder, onnx_embedder  # imports onnx (the `train` extra)

    if model is not None:
        embedder = onnx_embedder(model)
    else:
        require_extra("train", "cluster")
        embedder = keras_embedder(backbone, weights, image_size or None, seed)
    result = cluster_folder(in_dir, out_dir, k, embedder, seed=seed, link=link)
    for c, size in enumerate(result.sizes(), start=1):
        typer.echo(f"cluster_{c:02d}: {size} pages  ({out_dir / f'cluster_{c:02d}.png'})")
    if result.unreadable:
        typer.echo(f"{len(result.unreadable)} unreadable files skipped (see clusters.json)", err=True)
    typer.echo(str(out_dir))


def models_group(app: typer.Typer) -> typer.Typer:
    """The worker's ``models`` group, or a new one when the worker's commands are not installed."""
    for group in app.registered_groups:
        if group.name == "models" and group.typer_instance is not None:
            return group.typer_instance
    models = typer.Typer(help="Model versions.", no_args_is_help=True)
    app.add_typer(models, name="models")
    return models


def register(app: typer.Typer) -> None:
    """Add ``export``, ``cluster`` and ``models retarget``/``models calibrate`` to ``app``."""
    taken = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    if "export" not in taken:
        app.command("export")(export_command)
    app.command("cluster")(cluster_command)
    models = models_group(app)
    models.command("retarget")(retarget_command)
    models.command("calibrate")(calibrate_command)
