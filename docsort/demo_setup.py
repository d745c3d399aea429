"""The demo's options, its work folder and the logging of its own process."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from docsort.demo_procs import DemoError
from docsort.synth import CLASSES
from schema.logs import configure_logging

MARKER = ".docsort-demo"


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path = Path("docsort-data/demo")
    once: bool = False
    per_class: int = 60  # training pages per class
    inbox_per_class: int = 10  # fresh pages per class dropped into the inbox
    broken: int = 3  # unreadable files in the drop
    page_size: tuple[int, int] = (200, 256)
    classes: tuple[str, ...] = CLASSES
    image_size: int = 64
    epochs: int = 20
    batch_size: int = 8
    review_fraction: float | None = None  # None: the trained thresholds if they show review, else 0.2
    broker_url: str = "redis://127.0.0.1:6379/0"
    start_redis: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    timeout: float = 600.0
    seed: int = 0


class DemoPaths:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.training = workdir / "training"
        self.drop = workdir / "drop"
        self.labels = workdir / "inbox-labels.csv"
        self.data = workdir / "data"
        self.logs = workdir / "logs"
        self.pid_file = workdir / "demo.pid"

    def area(self, name: str) -> Path:
        return self.data / name

    @property
    def database_url(self) -> str:
        return f"sqlite:///{(self.data / 'docsort.db').as_posix()}"


def _running_demo(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() else None


def prepare_workdir(paths: DemoPaths) -> None:
    """A fresh work folder: only a folder that a demo made (or an empty or new one) is emptied."""
    workdir = paths.workdir
    if workdir.exists():
        if any(workdir.iterdir()) and not (workdir / MARKER).exists():
            raise DemoError(
                f"{workdir} is not empty and was not made by `docsort demo`: pick another --workdir"
            )
        if (pid := _running_demo(paths.pid_file)) is not None:
            raise DemoError(f"a demo (pid {pid}) is running in {workdir}: stop it or pick another --workdir")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by `docsort demo`; emptied by the next run\n")
    paths.pid_file.write_text(str(os.getpid()))
    paths.logs.mkdir()


class FileLogging:
    """This process's structured logs go to a file while the demo runs (the console shows the steps)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: list[logging.Handler] = []

    def __enter__(self) -> FileLogging:
        root = logging.getLogger()
        self.saved = root.handlers[:]
        configure_logging("INFO", "json")
        handler = logging.FileHandler(self.path, encoding="utf-8")
        handler.setFormatter(root.handlers[0].formatter)
        root.handlers[:] = [handler]
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = self.saved
