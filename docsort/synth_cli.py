"""``docsort synth OUT_DIR``: synthetic scanned pages in a few classes."""

from __future__ import annotations

from pathlib import Path

import typer

from docsort.synth import CLASSES, SynthOptions, generate, parse_classes, parse_size


def synth(
    out_dir: Path = typer.Argument(..., help="Folder to write (created if missing)."),
    per_class: int = typer.Option(50, "--per-class", "-n", help="Pages per class."),
    size: str = typer.Option("200x256", "--size", help="Nominal page size WIDTHxHEIGHT in pixels."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same files."),
    classes: str = typer.Option(",".join(CLASSES), "--classes", help="Comma-separated subset of classes."),
    fmt: str = typer.Option(
        "jpg", "--format", help="jpg, png, or mixed (JPEG, PNG, TIFF incl. G4, PDF, WebP, BMP)."
    ),
    unlabelled: bool = typer.Option(
        False, "--unlabelled", help="One flat folder of neutrally named files (for an inbox)."
    ),
    labels_csv: Path | None = typer.Option(
        None, "--labels-csv", help="Also write file,label rows here (keep it outside an inbox)."
    ),
    broken: int = typer.Option(
        0, "--broken", help="Add this many unreadable files (truncated, empty, not an image)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write synthetic scans (typed text, forms, photos, drawings) with real scan defects.

    Without --unlabelled: one subfolder per class, ready for `docsort train OUT_DIR`.
    """
    opts = SynthOptions(
        per_class=per_class,
        size=parse_size(size),
        seed=seed,
        classes=parse_classes(classes),
        fmt=fmt,  # type: ignore[arg-type]  # validated by SynthOptions
        unlabelled=unlabelled,
        broken=broken,
        labels_csv=labels_csv,
    )
    summary = generate(out_dir, opts, progress=not quiet)
    counts = ", ".join(f"{label} {n}" for label, n in sorted(summary.by_class.items()))
    typer.echo(f"wrote {len(summary.files)} files ({counts}) to {summary.out_dir}")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
