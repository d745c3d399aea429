"""Commands whose dependencies are optional extras stop with one line saying what to install."""

from __future__ import annotations

import importlib.util

import typer

EXTRA_MODULES = {"train": ("tensorflow", "tf2onnx", "onnx")}


def missing_extra(extra: str) -> str | None:
    """The first module of ``extra`` that is not importable, or None when all are."""
    for module in EXTRA_MODULES[extra]:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def require_extra(extra: str, command: str) -> None:
    module = missing_extra(extra)
    if module is not None:
        typer.echo(
            f"error: `docsort {command}` needs the `{extra}` extra ({module} is not installed): "
            f"pip install 'docsort[{extra}]'",
            err=True,
        )
        raise typer.Exit(code=3)
