"""The ``docsort`` command. Each package adds its own commands through ``register(app)``."""

from __future__ import annotations

import importlib

import typer

from docsort import __version__
from schema.errors import DocsortError

app = typer.Typer(
    name="docsort",
    help="Sort scanned documents: train, serve, watch, review.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: wrapped, never cut, in a pipe or an 80-column terminal
)

# Modules that add commands. Their top level must stay light: TensorFlow is imported inside commands.
COMMAND_MODULES = (
    "docsort.db_cli",
    "docsort.synth_cli",
    "docsort.demo_cli",
    "docsort.serve",
    "trainer.cli",
    "worker.cli",
    "ingest.cli",
    "review.cli",
    "ingest.api_cli",
    "trainer.cli_confidence",
    "trainer.cli_quality",
    "docsort.bench_cli",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"docsort {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print version."),
) -> None:
    """docsort: sort scanned document pages at volume."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    try:
        app()
    except DocsortError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
