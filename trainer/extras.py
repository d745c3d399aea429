"""Commands whose dependencies are optional extras stop with one line saying what to install.

Here rather than in ``docsort`` so that both the trainer's commands and ``docsort``'s benchmarks can
use it: ``docsort`` imports ``trainer``, never the other way round.
"""

from __future__ import annotations

import importlib.util

import typer

EXTRA_MODULES = {"train": ("tensorflow", "tf2onnx", "onnx")}


def missing_module(modules: tuple[str, ...]) -> str | None:
    """The first of ``modules`` that is not importable, or None when all are."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def missing_extra(extra: str) -> str | None:
    """The first module of ``extra`` that is not importable, or None when all are."""
    return missing_module(EXTRA_MODULES[extra])


def require_extra(extra: str, command: str) -> None:
    """Stop ``docsort COMMAND`` (exit 3) when a module of ``extra`` is missing."""
    module = missing_extra(extra)
    if module is not None:
        typer.echo(
            f"error: `docsort {command}` needs the `{extra}` extra ({module} is not installed): "
            f"pip install 'docsort[{extra}]'",
            err=True,
        )
        raise typer.Exit(code=3)


def require_modules(modules: tuple[str, ...], command: str, extra: str = "train") -> None:
    """Stop ``docsort COMMAND`` (exit 3) when one of ``modules`` (part of ``extra``) is missing."""
    module = missing_module(modules)
    if module is not None:
        typer.echo(f"error: `docsort {command}` needs {module} (pip install 'docsort[{extra}]')", err=True)
        raise typer.Exit(code=3)
