"""Commands of the worker: ``docsort models list|show|activate``, ``docsort classify``, ``docsort worker``.

Heavy modules (onnxruntime, celery) are imported inside the commands.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from schema import db
from schema.logs import configure_logging
from schema.manifest import load_manifest
from schema.tables import ModelVersion
from worker.classify import classify_paths
from worker.decide import Policy
from worker.inference import load_model
from worker.registry import ModelUnavailable, activate, active_version, scan_models_dir, sync_registry
from worker.settings import get_worker_settings
from worker.startup import check_ready, start_worker

models_app = typer.Typer(
    help="Model versions: list, show, activate.", no_args_is_help=True, rich_markup_mode=None
)


def _settings():  # type: ignore[no-untyped-def]

    settings = get_worker_settings()
    configure_logging(settings.log_level, settings.log_format)  # logs to stderr; stdout is for results
    return settings


@models_app.command("list")
def models_list() -> None:
    """List the model versions in the models folder and the database (* = active)."""

    settings = _settings()
    models_dir = settings.dir("models")
    found, problems = scan_models_dir(models_dir)
    active: set[tuple[str, str]] = set()
    try:
        with db.session_scope(db.make_sessionmaker(db.make_engine(settings.database_url))) as session:
            sync_registry(session, models_dir)
            from sqlalchemy import select

            active = {
                (r.name, r.version) for r in session.scalars(select(ModelVersion).where(ModelVersion.active))
            }
    except Exception as exc:  # the folder listing is still useful without a database
        typer.echo(
            f"warning: database not available ({type(exc).__name__}); active versions unknown", err=True
        )
    if not found:
        typer.echo(f"no model versions in {models_dir}")
    for item in found:
        m = item.manifest
        mark = "*" if (m.name, m.version) in active else " "
        accuracy = m.metrics.get("test_accuracy", m.metrics.get("accuracy", ""))
        typer.echo(
            f"{mark} {m.name}/{m.version}  backbone={m.backbone}  classes={len(m.class_names)}  "
            f"threshold={m.thresholds.confidence:.3f}  accuracy={accuracy}  {item.path}"
        )
    for problem in problems:
        typer.echo(f"! {problem}", err=True)


@models_app.command("show")
def models_show(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(None, help="Version; default: the active one."),
) -> None:
    """Print a model version's manifest (JSON)."""

    settings = _settings()
    if version is None:
        with db.session_scope(db.make_sessionmaker(db.make_engine(settings.database_url))) as session:
            row = active_version(session, name)
            if row is None:
                raise ModelUnavailable(f"model {name!r} has no active version; name a VERSION")
            folder = Path(row.path)
    else:
        folder = settings.dir("models") / name / version
    manifest = load_manifest(folder, verify=False)
    typer.echo(json.dumps({"path": str(folder), **manifest.model_dump(mode="json")}, indent=2))


@models_app.command("activate")
def models_activate(
    name: str = typer.Argument(..., help="Model name."), version: str = typer.Argument(..., help="Version.")
) -> None:
    """Make NAME/VERSION the active version; running workers switch to it before their next job."""

    settings = _settings()
    with db.session_scope(db.make_sessionmaker(db.make_engine(settings.database_url))) as session:
        row = activate(session, settings.dir("models"), name, version)
        typer.echo(f"active: {row.name}/{row.version} ({row.path})")


def classify(
    paths: list[Path] = typer.Argument(..., help="Files or folders to classify."),
    model: Path = typer.Option(..., "--model", help="A model version folder (with manifest.json)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per page on stdout."),
    provider: str = typer.Option("cpu", help="cpu, cuda or auto."),
    confidence: float = typer.Option(None, help="Override the manifest's confidence threshold."),
    margin: float = typer.Option(None, help="Override the manifest's minimum margin."),
    batch_size: int = typer.Option(32, min=1, help="Most pages per ONNX Runtime run."),
) -> None:
    """Classify files in this process (no broker, no database). Exit code 1 if any file failed."""

    # No settings needed here (no database, no broker); logs go to stderr, quiet unless asked for.
    configure_logging(
        os.environ.get("DOCSORT_LOG_LEVEL", "WARNING"), os.environ.get("DOCSORT_LOG_FORMAT", "console")
    )
    if provider not in ("cpu", "cuda", "auto"):
        raise typer.BadParameter("use cpu, cuda or auto", param_hint="--provider")
    loaded = load_model(model, provider, 0, batch_size)  # type: ignore[arg-type]
    policy = Policy.from_thresholds(loaded.manifest.thresholds, confidence, margin)
    failed = 0
    for result in classify_paths(paths, loaded, policy):
        failed += result["status"] == "error"
        if as_json:
            typer.echo(json.dumps(result))
        elif result["status"] == "ok":
            typer.echo(
                f"{result['path']}\tpage {result['page']}\t{result['label']}\t"
                f"{result['confidence']:.3f}\t{result['decision']}"
            )
        else:
            typer.echo(f"{result['path']}\terror\t{result['error']}")
    if failed:
        raise typer.Exit(code=1)


def _prepare_metrics_dir() -> None:
    """prometheus-client multiprocess mode: a fresh folder, chosen before any metric is made."""
    import tempfile

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="docsort-metrics-")


def worker(
    concurrency: int = typer.Option(None, "-c", "--concurrency", help="Worker processes."),
    queues: str = typer.Option(None, "-Q", "--queues", help="Queues to consume, comma-separated."),
    provider: str = typer.Option(None, help="cpu, cuda or auto."),
    threads: int = typer.Option(None, help="Intra-op threads per process (default: cores / processes)."),
    batch_size: int = typer.Option(None, help="Most pages per ONNX Runtime run."),
    model_name: str = typer.Option(None, help="Model to serve (default: the active one)."),
    model_dir: Path = typer.Option(None, help="Serve this version folder instead of the active version."),
    metrics_port: int = typer.Option(None, help="Serve Prometheus metrics on this port."),
    hostname: str = typer.Option("docsort@%h", "-n", "--hostname", help="Celery node name."),
    pool: str = typer.Option("prefork", help="Celery pool: prefork, or solo (one process)."),
) -> None:
    """Start a Celery worker consuming classify jobs (options override DOCSORT_* settings)."""
    options = {
        "CONCURRENCY": concurrency,
        "QUEUE": queues,
        "PROVIDER": provider,
        "THREADS": threads,
        "BATCH_SIZE": batch_size,
        "MODEL_NAME": model_name,
        "MODEL_DIR": model_dir,
        "METRICS_PORT": metrics_port,
    }
    for key, value in options.items():
        if value is not None:
            os.environ[f"DOCSORT_{key}"] = str(value)
    if os.environ.get("DOCSORT_METRICS_PORT", "0") not in ("", "0"):
        _prepare_metrics_dir()  # before any metric exists: worker.metrics is imported below

    settings = check_ready()
    start_worker(settings, hostname, pool)


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
    app.add_typer(models_app, name="models")
    app.command("classify")(classify)
    app.command("worker")(worker)
