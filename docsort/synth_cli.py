"""``docsort synth OUT_DIR``: synthetic scanned pages in a few classes."""

from __future__ import annotations

from pathlib import Path

import typer

from docsort.synth import CLASSES, SynthError, SynthOptions, generate, parse_classes, parse_size


def parse_range(text: str) -> tuple[int, int]:
    """``"2-6"`` → (2, 6); a single number is both ends."""
    parts = text.replace(" ", "").split("-")
    try:
        values = [int(p) for p in parts]
    except ValueError as exc:
        raise SynthError(f"--batch-documents {text!r}: expected LO-HI, e.g. 2-6") from exc
    if len(values) not in (1, 2):
        raise SynthError(f"--batch-documents {text!r}: expected LO-HI, e.g. 2-6")
    return values[0], values[-1]


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
    a4: bool = typer.Option(
        False, "--a4", help="A4 scans at real resolution, fast (the options below); --size is ignored."
    ),
    pages: int = typer.Option(200, "--pages", help="[--a4] Pages of single-document files."),
    a4_formats: str = typer.Option(
        "jpg,tif,png,pdf", "--a4-formats", help="[--a4] Mix of jpg (colour), tif (G4), png (grey), pdf."
    ),
    dpi: int = typer.Option(300, "--dpi", help="[--a4] Resolution: 300 gives 2480x3508 pages."),
    multi_page: float = typer.Option(
        0.0, "--multi-page", help="[--a4] Share of documents of 2-4 pages (as TIFF or PDF)."
    ),
    blank: int = typer.Option(0, "--blank", help="[--a4] Files of one blank page."),
    batches: int = typer.Option(
        0, "--batches", help="[--a4] Batch files (PDF or TIFF) of several documents; needs --unlabelled."
    ),
    batch_documents: str = typer.Option(
        "2-6", "--batch-documents", help="[--a4] Documents per batch, LO-HI."
    ),
    separator: str = typer.Option(
        "qr", "--separator", help="[--a4] Sheet between a batch's documents: none, blank, qr, code128."
    ),
    truth: Path | None = typer.Option(
        None,
        "--truth",
        help="[--a4] Ground-truth JSON; default OUT_DIR/truth.json, or beside an unlabelled OUT_DIR.",
    ),
    workers: int = typer.Option(0, "--workers", help="[--a4] Processes; 0: one per core."),
) -> None:
    """Write synthetic scans (typed text, forms, photos, drawings) with real scan defects.

    Without --unlabelled: one subfolder per class, ready for `docsort train OUT_DIR`. With --a4: A4 pages
    at 300 dpi in the formats scanners write, blank pages, batches with separator sheets, ground truth.
    """
    if a4:
        from docsort.synth_a4_files import A4Options, generate_a4  # pikepdf, segno: only when asked

        a4_opts = A4Options(
            pages=pages,
            seed=seed,
            classes=parse_classes(classes),
            formats=parse_classes(a4_formats),
            dpi=dpi,
            multi_page=multi_page,
            blank=blank,
            batches=batches,
            batch_documents=parse_range(batch_documents),
            separator=separator,
            unlabelled=unlabelled,
            workers=workers,
        )
        done = generate_a4(out_dir, a4_opts, truth, progress=not quiet)
        typer.echo(
            f"wrote {len(done.files)} files ({done.pages} A4 pages) to {done.out_dir} "
            f"in {done.seconds:.1f} s ({done.pages / max(done.seconds, 1e-9):.1f} pages/s); "
            f"ground truth {done.truth_path}"
        )
        return
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
