"""``docsort bench``: benchmarks that measure side by side in one run and print the ratios.

Each command prints a summary, ends with one JSON object when given ``--json``, and with
``--write-docs`` records its run (machine, load, rerun command) in its table of ``docs/benchmarks.md``.
Heavy modules (TensorFlow, onnxruntime, Celery) are imported inside the commands.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

import typer

from docsort.bench import assemble, cam, inference, int8, intake, pipeline, scale, separate
from docsort.bench.a4 import a4_folder
from docsort.bench.docs import DOC_PATH, record
from docsort.bench.machine import this_machine
from trainer.bench import format_head_cache, head_cache
from trainer.extras import require_extra
from trainer.recipe import RECIPES

bench_app = typer.Typer(
    help="Benchmarks: measured side by side in one run, with ratios.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JSON_OPT = typer.Option(False, "--json", help="End the output with one JSON object.")
DOCS_OPT = typer.Option(False, "--write-docs", help="Record this run in its table of docs/benchmarks.md.")
DOCS_PATH_OPT = typer.Option(None, "--docs", help="The benchmarks file (default: docs/benchmarks.md).")
QUIET_LOAD = 1.5
A4_PAGES = 200


def rerun_command(ctx: typer.Context) -> str:
    """The command line of this run: the options given explicitly, as given."""
    words = ["docsort", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name) if param.name else None
        if source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params[param.name]  # type: ignore[index]
        opts = list(getattr(param, "opts", []))
        if getattr(param, "is_flag", False):
            words.append(opts[0] if value else (list(getattr(param, "secondary_opts", [])) or opts)[0])
        elif opts and opts[0].startswith("-"):
            for one in value if isinstance(value, list | tuple) else [value]:  # a repeated option
                words += [opts[0], str(one)]
        else:
            words.append(str(value))
    return shlex.join(words)


def _machine(extra: tuple[str, ...] = ()) -> Any:

    machine = this_machine(extra)
    if machine.load[0] > QUIET_LOAD:
        typer.echo(
            f"warning: load average {machine.load_text()} (over {QUIET_LOAD}): other work shares the CPU",
            err=True,
        )
    return machine


def _finish(ctx: typer.Context, section: Any, result: dict[str, Any], lines: list[str], machine: Any,
            as_json: bool, docs: bool, docs_path: Path | None) -> None:  # fmt: skip

    result = _finite(result)
    for line in lines:
        typer.echo(line)
    typer.echo(f"machine: {machine.describe()}; load {machine.load_text()}")
    if docs:
        written = record(section, result, machine, rerun_command(ctx), docs_path or DOC_PATH)
        typer.echo(f"recorded in {written}")
    if as_json:
        typer.echo(json.dumps({**result, "machine": machine.describe(), "load": list(machine.load)}))


@bench_app.command("inference")
def inference_command(
    ctx: typer.Context,
    backbone: str = typer.Option("small-cnn", "--backbone", help="small-cnn, vgg16 or xception."),
    image_size: int = typer.Option(0, "--image-size", min=0, help="Input side (0: the backbone's default)."),
    batch: int = typer.Option(8, "--batch", min=1, help="Images per run."),
    rounds: int = typer.Option(10, "--rounds", min=1, help="Timed rounds (after 2 warm-ups)."),
    threads: int = typer.Option(0, "--threads", min=0, help="Threads per engine (0: all cores)."),
    provider: str = typer.Option("cpu", "--provider", help="cpu or cuda (ONNX Runtime's device)."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 graph for ONNX Runtime, mixed_float16 for Keras."),
    as_json: bool = JSON_OPT,
    write_docs: bool = DOCS_OPT,
    docs_path: Path = DOCS_PATH_OPT,
) -> None:
    """ONNX Runtime FP32 against Keras model.predict and a direct Keras call: images/s and % of peak."""
    require_extra("train", "bench inference")

    if backbone not in RECIPES:
        raise typer.BadParameter(f"choose one of {', '.join(RECIPES)}", param_hint="--backbone")
    if provider not in ("cpu", "cuda"):
        raise typer.BadParameter("cpu or cuda", param_hint="--provider")
    machine = _machine(("tensorflow", "keras", "tf2onnx"))
    size = image_size or RECIPES[backbone].image_size
    result = inference.run(
        backbone, size, batch, machine, rounds=rounds, threads=threads, provider=provider, fp16=fp16
    )
    _finish(
        ctx, inference.SECTION, result, inference.summary(result), machine, as_json, write_docs, docs_path
    )


@bench_app.command("int8")
def int8_command(
    ctx: typer.Context,
    model: Path = typer.Option(
        ..., "--model", exists=True, file_okay=False, help="A trained version folder."
    ),
    data: Path = typer.Option(
        ..., "--data", exists=True, file_okay=False, help="The labelled folder it was trained on."
    ),
    batch: int = typer.Option(32, "--batch", min=1, help="Pages per timed run."),
    rounds: int = typer.Option(10, "--rounds", min=1, help="Timed rounds (after 2 warm-ups)."),
    calib_images: int = typer.Option(200, "--calib-images", min=1, help="Training pages for calibration."),
    images: int = typer.Option(0, "--images", min=0, help="Held-out pages to compare (0: all)."),
    threads: int = typer.Option(0, "--threads", min=0, help="Threads per session (0: all cores)."),
    as_json: bool = JSON_OPT,
    write_docs: bool = DOCS_OPT,
    docs_path: Path = DOCS_PATH_OPT,
) -> None:
    """Static INT8 (QDQ) against FP32: images/s and label agreement on held-out pages."""
    require_extra("train", "bench int8")  # onnx, for the quantizer

    machine = _machine(("onnx",))
    result = int8.run(
        model, data, machine, batch=batch, rounds=rounds, n_calib=calib_images, limit=images, threads=threads
    )
    _finish(ctx, int8.SECTION, result, int8.summary(result), machine, as_json, write_docs, docs_path)


MODEL_OPT = typer.Option(..., "--model", exists=True, file_okay=False, help="A model version folder.")
DATA_OPT = typer.Option(..., "--data", exists=True, file_okay=False, help="A folder of page files.")
PAGES_DATA_OPT = typer.Option(
    None, "--data", exists=True, file_okay=False, help="A folder of page files (or --a4)."
)
A4_OPT = typer.Option(
    False, "--a4", help="The A4 scan mix at 300 dpi (JPEG, G4 TIFF, grey PNG, PDF), made once and kept."
)


def _pages_data(data: Path | None, a4: bool, pages: int) -> Path:
    """The folder of page files: ``--data``, or with ``--a4`` the A4 mix (200 pages, or ``pages`` when
    more are asked: the same mix whatever the benchmark, each drawing its pages from it)."""
    if a4 == (data is not None):
        raise typer.BadParameter("give --data DIR or --a4 (one of them)", param_hint="--data / --a4")
    return a4_folder(max(pages, A4_PAGES)) if a4 else data  # type: ignore[return-value]


DB_OPT = typer.Option(
    "", "--database-url", help="A PostgreSQL server to create a fresh database on (default: a SQLite file)."
)
BROKER_OPT = typer.Option("redis://localhost:6379/0", "--broker-url", help="Redis (a fresh queue is used).")


@bench_app.command("pipeline")
def pipeline_command(
    ctx: typer.Context,
    model: Path = MODEL_OPT,
    data: Path | None = PAGES_DATA_OPT,
    a4: bool = A4_OPT,
    pages: int = typer.Option(200, "--pages", min=1, help="Page files dropped into the watch folder."),
    database_url: str = DB_OPT,
    broker_url: str = BROKER_OPT,
    settle: float = typer.Option(0.5, "--settle", min=0.05, help="The watcher's settle window, seconds."),
    threads: int = typer.Option(0, "--threads", min=0, help="ONNX Runtime threads (0: cores / processes)."),
    processes: int = typer.Option(1, "--processes", min=1, help="Worker pool processes."),
    decode_threads: int = typer.Option(1, "--decode-threads", min=1, help="Files a process decodes at once."),
    provider: str = typer.Option("cpu", "--provider", help="cpu or cuda (worker and bare ORT)."),
    confidence: float | None = typer.Option(
        None, "--confidence", min=0.0, max=1.0, help="Override the model's confidence threshold."
    ),
    as_json: bool = JSON_OPT,
    write_docs: bool = DOCS_OPT,
    docs_path: Path = DOCS_PATH_OPT,
) -> None:
    """Pages/s from watch folder to routed file against bare ONNX Runtime on the same pages."""

    machine = _machine()
    result = pipeline.run(
        model,
        _pages_data(data, a4, pages),
        machine,
        pages=pages,
        database_url=database_url,
        broker_url=broker_url,
        settle=settle,
        threads=threads,
        processes=processes,
        decode_threads=decode_threads,
        provider="cuda" if provider == "cuda" else "cpu",
        confidence=confidence,
    )
    _finish(ctx, pipeline.SECTION, result, pipeline.summary(result), machine, as_json, write_docs, docs_path)


@bench_app.command("intake")
def intake_command(
    ctx: typer.Context,
    data: Path | None = PAGES_DATA_OPT,
    a4: bool = A4_OPT,
    files: list[int] = typer.Option([200, 1000], "--files", min=1, help="Files per run (repeat the option)."),
    database_url: list[str] = typer.Option(
        ["sqlite"], "--database-url", help="sqlite, or a PostgreSQL server for a fresh database (repeatable)."
    ),
    broker_url: str = BROKER_OPT,
    compare: Path | None = typer.Option(
        None, "--compare", help="Another docsort checkout, measured in turn."
    ),
    rounds: int = typer.Option(2, "--rounds", min=1, help="Runs of each code (interleaved)."),
    as_json: bool = JSON_OPT,
    write_docs: bool = DOCS_OPT,
    docs_path: Path = DOCS_PATH_OPT,
) -> None:
    """The watcher's intake alone: files/s and CPU per file, against another checkout with --compare."""

    machine = _machine()
    urls = ["" if u == "sqlite" else u for u in database_url]
    folder = _pages_data(data, a4, A4_PAGES)
    rows = intake.run(folder, files, urls, broker_url=broker_url, compare=compare, rounds=rounds)
    for line in intake.summary(rows):
        typer.echo(line)
    typer.echo(f"machine: {machine.describe()}; load {machine.load_text()}")
    for row in rows if write_docs else []:
        written = record(intake.SECTION, _finite(row), machine, rerun_command(ctx), docs_path or DOC_PATH)
        typer.echo(f"recorded in {written}")
    if as_json:
        typer.echo(
            json.dumps({"runs": _finite(rows), "machine": machine.describe(), "load": list(machine.load)})
        )


@bench_app.command("cam")
def cam_command(
    ctx: typer.Context,
    model: Path = MODEL_OPT,
    data: Path | None = PAGES_DATA_OPT,
    a4: bool = A4_OPT,
    pages: int = typer.Option(64, "--pages", min=1, help="Page files to run."),
    rounds: int = typer.Option(3, "--rounds", min=1, help="Rounds of both paths."),
    threads: int = typer.Option(0, "--threads", min=0, help="ONNX Runtime threads (0: all cores)."),
    as_json: bool = JSON_OPT,
    write_docs: bool = DOCS_OPT,
    docs_path: Path = DOCS_PATH_OPT,
) -> None:
    """The review path (page image and CAM overlay written) against the auto path, per page."""

    machine = _machine()
    result = cam.run(
        model, _pages_data(data, a4, pages), machine, pages=pages, rounds=rounds, threads=threads
    )
    _finish(ctx, cam.SECTION, result, cam.summary(result), machine, as_json, write_docs, docs_path)


@bench_app.command("scale")
def scale_command(
    ctx: typer.Context,
    model: Path = MODEL_OPT,
    data: Path | None = PAGES_DATA_OPT,
    a4: bool = A4_OPT,
    pages: int = typer.Option(200, "--pages", min=1, help="Page files per run."),
    rounds: int = typer.Option(2, "--rounds", min=1, help="Runs of each (order 1, 2, 2, 1 ...)."),
    database_url: str = DB_OPT,
    broker_url: str = BROKER_OPT,
    as_json: bool = JSON_OPT,
    write_docs: bool = DOCS_OPT,
    docs_path: Path = DOCS_PATH_OPT,
) -> None:
    """One worker process against two, each with one thread: pages/s and the ratio."""

    machine = _machine()
    folder = _pages_data(data, a4, pages)
    result = scale.run(
        model, folder, machine, pages=pages, rounds=rounds, database_url=database_url, broker_url=broker_url
    )
    _finish(ctx, scale.SECTION, result, scale.summary(result), machine, as_json, write_docs, docs_path)


@bench_app.command("assemble")
def assemble_command(
    ctx: typer.Context,
    pages: int = typer.Option(30, "--pages", min=4, help="Pages per batch file (A4 at 300 dpi)."),
    distinct: int = typer.Option(4, "--distinct", min=1, help="Distinct synthetic scans, cycled."),
    rounds: int = typer.Option(3, "--rounds", min=1, help="Timed rounds (after 1 warm-up)."),
    as_json: bool = JSON_OPT,
    write_docs: bool = DOCS_OPT,
    docs_path: Path = DOCS_PATH_OPT,
) -> None:
    """Documents of 1-4 pages written without loss against page-by-page PNG: ms and bytes per page."""

    machine = _machine(("pikepdf", "tifffile", "pypdfium2"))
    result = assemble.run(pages=pages, distinct=distinct, rounds=rounds)
    _finish(ctx, assemble.SECTION, result, assemble.summary(result), machine, as_json, write_docs, docs_path)


@bench_app.command("separate")
def separate_command(
    ctx: typer.Context,
    files: int = typer.Option(500, "--files", min=1, help="Simulated batch files for the class rule."),
    image_files: int = typer.Option(20, "--image-files", min=0, help="Scanned batch files per image rule."),
    lambdas: str = typer.Option("0,1,2,3,4,5,6,8", "--lambdas", help="New-document costs to compare (nats)."),
    classes: str = typer.Option("4,16", "--classes", help="Class counts of the simulated classifiers."),
    dpi: int = typer.Option(150, "--dpi", min=50, max=300, help="Resolution of the generated A4 scans."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = JSON_OPT,
    write_docs: bool = typer.Option(False, "--write-docs", help="Record this run in docs/documents.md."),
    docs_path: Path = typer.Option(
        None, "--docs", help="The file to record in (default: docs/documents.md)."
    ),
) -> None:
    """Documents recovered exactly by the separation rules: greedy against the segmentation cost."""
    try:
        costs = tuple(float(x) for x in lambdas.split(","))
        counts = tuple(int(x) for x in classes.split(","))
    except ValueError as exc:
        raise typer.BadParameter("numbers joined by commas, e.g. 0,2,4 and 4,16") from exc
    if any(k < 2 for k in counts):
        raise typer.BadParameter("at least 2 classes each", param_hint="--classes")
    machine = _machine()
    result = _finite(separate.run(files, image_files, costs, counts, dpi, seed))
    for line in separate.summary(result):
        typer.echo(line)
    typer.echo(f"machine: {machine.describe()}; load {machine.load_text()}")
    if write_docs:
        written = separate.write_docs(result, machine, rerun_command(ctx), docs_path or separate.DOC_PATH)
        typer.echo(f"recorded in {written}")
    if as_json:
        typer.echo(json.dumps({**result, "machine": machine.describe(), "load": list(machine.load)}))


@bench_app.command("head-cache")
def head_cache_command(
    backbone: str = typer.Option("vgg16", "--backbone", help="small-cnn, vgg16 or xception."),
    image_size: int = typer.Option(96, "--image-size", min=16),
    images: int = typer.Option(640, "--images", min=10, help="Images in all (20% for validation)."),
    epochs: int = typer.Option(3, "--epochs", min=1, help="Epochs timed after one warm-up epoch."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    weights: str = typer.Option("none", "--weights", help="none | imagenet | a weights file."),
    data_dir: Path = typer.Option(None, "--data-dir", exists=True, file_okay=False, help="Labelled pages."),
    threads: int = typer.Option(None, "--threads", min=1),
    seed: int = typer.Option(42, "--seed"),
    as_json: bool = JSON_OPT,
) -> None:
    """The trainer's benchmark: head epochs on cached features against frozen-backbone epochs."""
    require_extra("train", "bench head-cache")
    import argparse

    args = argparse.Namespace(
        backbone=backbone,
        image_size=image_size,
        images=images,
        epochs=epochs,
        batch_size=batch_size,
        weights=weights,
        data_dir=data_dir,
        threads=threads,
        seed=seed,
    )
    result = head_cache(args)
    typer.echo(format_head_cache(result))
    if as_json:
        typer.echo(json.dumps(_finite(result)))


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def register(app: typer.Typer) -> None:
    """Add ``docsort bench ...`` to ``app``."""
    app.add_typer(bench_app, name="bench")
