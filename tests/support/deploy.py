"""Helpers for the deployment tests: the repository's paths, its settings' names, YAML documents."""

from __future__ import annotations

import importlib
import pkgutil
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from schema.settings import DocsortSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
SETTING_PACKAGES = ("schema", "worker", "ingest", "review")
ENV_NAME = re.compile(r"\bDOCSORT_[A-Z0-9_]+\b")
TENSORFLOW_NAMES = ("tensorflow", "tf-nightly", "keras", "tf2onnx", "tf-keras")


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def settings_classes() -> list[type[DocsortSettings]]:
    """DocsortSettings and every subclass defined in a ``settings`` module of the serving packages."""
    for package in SETTING_PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if info.name.rsplit(".", 1)[-1] == "settings":
                importlib.import_module(info.name)
    return [DocsortSettings, *_subclasses(DocsortSettings)]


def setting_env_names() -> set[str]:
    """Every ``DOCSORT_*`` variable that some settings class reads."""
    return {f"DOCSORT_{name.upper()}" for cls in settings_classes() for name in cls.model_fields}


def env_names_in(text: str) -> set[str]:
    return set(ENV_NAME.findall(text))


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open() as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def load_compose() -> dict[str, Any]:
    with COMPOSE.open() as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict)
    return data


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def requirement_name(requirement: str) -> str:
    """``"celery[redis]>=5.4"`` → ``"celery"`` (normalised)."""
    name = re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def dockerfile_stages(path: Path) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split into build stages."""
    joined: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line[:-1].strip()}" if line.endswith("\\") else f"{pending} {line}"
        if not line.endswith("\\"):
            joined.append(pending.strip())
            pending = ""
    stages: list[list[str]] = []
    for instruction in joined:
        if instruction.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages
