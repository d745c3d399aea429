"""The trainer's imports run one way: no cycles (imports inside functions count), no ``docsort``,
and from ``worker`` only its public modules for decoding, the decision rule and inference."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER_MODULES_FOR_TRAINER = {"worker.imaging", "worker.decide", "worker.inference"}


def imports_of(path: Path) -> set[str]:
    """Every module named by an absolute import anywhere in the file, function bodies included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def package_graph(package: str) -> dict[str, set[str]]:
    modules = {f"{package}.{p.stem}": p for p in (ROOT / package).glob("*.py") if p.stem != "__init__"}
    return {name: imports_of(path) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    edges = {m: sorted(d for d in deps if d in graph and d != m) for m, deps in graph.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for dep in edges[module]:
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep, [*path, dep])):
                return found
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (found := visit(module, [module])):
            return found
    return None


def test_trainer_modules_import_each_other_without_a_cycle() -> None:
    assert find_cycle(package_graph("trainer")) is None


def test_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a", "numpy"}}
    assert find_cycle(graph) == ["p.a", "p.b", "p.c", "p.a"]
    source = tmp_path / "b.py"
    source.write_text("def f():\n    from p.a import g\n    return g\n")
    assert "p.a" in imports_of(source)


@pytest.mark.parametrize("module", sorted(package_graph("trainer")))
def test_trainer_imports_neither_docsort_nor_worker_internals(module: str) -> None:
    imported = package_graph("trainer")[module]
    assert not {m for m in imported if m == "docsort" or m.startswith("docsort.")}
    worker = {m for m in imported if m.startswith("worker.") and m.count(".") == 1}
    assert worker <= WORKER_MODULES_FOR_TRAINER


def test_worker_never_imports_trainer_or_tensorflow() -> None:
    for module, imported in package_graph("worker").items():
        wrong = {m for m in imported if m.split(".")[0] in ("trainer", "tensorflow", "keras")}
        assert not wrong, f"{module} imports {sorted(wrong)}"
