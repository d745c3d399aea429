"""Dockerfiles: multi-stage, non-root, no compilers at run time, and a worker image without TensorFlow."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.deploy import (
    DEPLOY,
    ROOT,
    TENSORFLOW_NAMES,
    dockerfile_stages,
    load_compose,
    pyproject,
    requirement_name,
)

DOCKERFILES = sorted(DEPLOY.glob("*.Dockerfile"))
COMPILERS = ("gcc", "g++", "build-essential", "clang", "make ", "cmake")
HADOLINT = Path(sys.executable).parent / "hadolint"


def _pip_installs(stages: list[list[str]]) -> list[str]:
    return [i for stage in stages for i in stage if i.upper().startswith("RUN") and "pip install" in i]


def test_there_is_a_dockerfile_for_the_worker_the_gpu_worker_and_the_trainer() -> None:
    names = {p.name for p in DOCKERFILES}
    assert {"worker.Dockerfile", "gpu-worker.Dockerfile", "trainer.Dockerfile"} <= names


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_multi_stage_and_the_runtime_copies_only_from_the_builder(dockerfile: Path) -> None:
    stages = dockerfile_stages(dockerfile)
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    builder_alias = stages[0][0].split()[-1]
    assert stages[0][0].upper().split()[-2] == "AS", "the builder stage is named"
    runtime = stages[-1]
    copies = [i for i in runtime if i.upper().startswith("COPY")]
    assert any(f"--from={builder_alias}" in i for i in copies)
    assert not any(i.upper().startswith("COPY") and "--from" not in i for i in runtime), (
        "runtime copies no sources"
    )
    assert any("pip wheel" in i for i in stages[0]), "the builder builds a wheel"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_runtime_runs_as_a_non_root_user(dockerfile: Path) -> None:
    runtime = dockerfile_stages(dockerfile)[-1]
    users = [i.split(None, 1)[1].strip() for i in runtime if i.upper().startswith("USER ")]
    assert users, "USER is set in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_runtime_installs_no_compiler(dockerfile: Path) -> None:
    runtime = " ".join(dockerfile_stages(dockerfile)[-1]).lower()
    assert not [c for c in COMPILERS if re.search(rf"install[^&]*\b{re.escape(c.strip())}\b", runtime)]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copies_only_paths_that_exist(dockerfile: Path) -> None:
    for stage in dockerfile_stages(dockerfile):
        for instruction in stage:
            parts = instruction.split()
            if parts[0].upper() != "COPY" or any(p.startswith("--from") for p in parts):
                continue
            for source in parts[1:-1]:
                assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source}"


def test_base_install_has_no_tensorflow() -> None:
    names = {requirement_name(r) for r in pyproject()["project"]["dependencies"]}
    assert names, "pyproject lists the base dependencies"
    assert not names & set(TENSORFLOW_NAMES)
    gpu = {requirement_name(r) for r in pyproject()["project"]["optional-dependencies"]["gpu"]}
    assert not gpu & set(TENSORFLOW_NAMES)


def test_worker_images_install_docsort_without_the_train_extra() -> None:
    services = load_compose()["services"]
    for name in ("worker", "watcher", "web", "gpu-worker"):
        dockerfile = ROOT / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]
        installs = _pip_installs(dockerfile_stages(dockerfile))
        assert installs, f"{dockerfile.name} installs docsort"
        text = " ".join(installs).lower()
        assert "docsort-*.whl" in text or "${wheel}" in text
        assert "[train" not in text and ",train" not in text
        assert not [n for n in TENSORFLOW_NAMES if n in text]


def test_trainer_image_installs_the_train_extra() -> None:
    installs = " ".join(_pip_installs(dockerfile_stages(DEPLOY / "trainer.Dockerfile")))
    assert "[train]" in installs


def test_gpu_image_replaces_cpu_onnxruntime_with_the_gpu_build() -> None:
    installs = " ".join(_pip_installs(dockerfile_stages(DEPLOY / "gpu-worker.Dockerfile")))
    assert "[gpu]" in installs
    assert "uninstall -y onnxruntime" in (DEPLOY / "gpu-worker.Dockerfile").read_text()


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    for needed in (".git", ".venv", "docsort-data", "docsort.env", "**/secrets.env", "tests"):
        assert needed in patterns, needed


@pytest.mark.skipif(not HADOLINT.exists() and not shutil.which("hadolint"), reason="hadolint (dev extra)")
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_no_warning(dockerfile: Path) -> None:
    exe = str(HADOLINT) if HADOLINT.exists() else str(shutil.which("hadolint"))
    done = subprocess.run(
        [exe, "--failure-threshold", "warning", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
