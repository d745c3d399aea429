"""``docsort demo``: the main job on one machine (synthetic pages, training, broker, worker, watcher, web)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import typer

from docsort.demo import run_demo
from docsort.demo_setup import DemoOptions
from docsort.synth import SynthOptions, parse_classes, parse_size


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def demo(
    once: bool = typer.Option(
        False, "--once", help="Exit after printing the table of outcomes (for scripts)."
    ),
    workdir: Path = typer.Option(
        Path("docsort-data/demo"), "--workdir", help="Work folder (emptied first if an earlier demo made it)."
    ),
    per_class: int = typer.Option(60, "--per-class", min=2, help="Training pages per class."),
    inbox_per_class: int = typer.Option(10, "--inbox-per-class", min=1, help="Fresh pages per class."),
    broken: int = typer.Option(3, "--broken", min=0, help="Unreadable files dropped with them."),
    page_size: str = typer.Option("200x256", "--page-size", help="Page size WIDTHxHEIGHT of the scans."),
    classes: str = typer.Option("text,form,photo,drawing", "--classes", help="Classes, comma-separated."),
    image_size: int = typer.Option(64, "--image-size", min=16, help="Model input side in pixels."),
    epochs: int = typer.Option(20, "--epochs", min=1, help="Training epochs."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Training batch size."),
    review_fraction: float | None = typer.Option(
        None,
        "--review-fraction",
        min=0.0,
        max=0.9,
        help="Serve with the confidence below which this share of validation pages falls "
        "[default: the trained thresholds when they send 10-60% of validation pages to review, else 0.2].",
    ),
    broker_url: str = typer.Option(
        "redis://127.0.0.1:6379/0", "--broker-url", help="Redis to use when it answers."
    ),
    start_redis: bool = typer.Option(
        True, "--start-redis/--no-start-redis", help="Start a private redis-server if none answers."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address of the web application."),
    port: int = typer.Option(
        8000, "--port", min=1, max=65535, help="Port of the web application (or a free one)."
    ),
    timeout: float = typer.Option(600.0, "--timeout", min=1.0, help="Seconds to wait for every outcome."),
    seed: int = typer.Option(0, "--seed", help="Seed of the pages and of training."),
) -> None:
    """Run the whole flow on this machine: synthetic scans, training, broker, worker, watcher, web.

    Ctrl-C stops every process it started. Logs: WORKDIR/logs/.
    """

    SynthOptions(size=parse_size(page_size), classes=parse_classes(classes))  # refuse bad values before work
    opts = DemoOptions(
        workdir=workdir,
        once=once,
        per_class=per_class,
        inbox_per_class=inbox_per_class,
        broken=broken,
        page_size=parse_size(page_size),
        classes=parse_classes(classes),
        image_size=image_size,
        epochs=epochs,
        batch_size=batch_size,
        review_fraction=review_fraction,
        broker_url=broker_url,
        start_redis=start_redis,
        host=host,
        port=port,
        timeout=timeout,
        seed=seed,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where a shell started it ignoring SIGINT
    try:
        run_demo(opts)
    except KeyboardInterrupt:
        typer.echo("demo stopped")


def register(app: typer.Typer) -> None:
    """Add ``docsort demo``."""
    app.command("demo")(demo)
