"""Bare ONNX Runtime laid out as the worker is: ``processes`` processes, each with a session of ``threads``
threads (the worker's own inference code), each running its share of the same decoded pages at once.

A round sends every process its go and ends when the last one has run its share, so a round's rate is
what the model alone gets out of the cores the pipeline was given; each process also reports the CPU
time it spent, which other work on the machine does not inflate as it inflates wall time. With one
process this is one session of ``threads`` threads over all the pages, as the benchmark measured it
before.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType

import numpy as np

from docsort.bench.common import BenchError
from worker.inference import load_model
from worker.settings import Provider


def _serve(
    conn: Connection, model_dir: Path, provider: Provider, threads: int, batch: int, pages: np.ndarray
) -> None:
    """One process: load the model, say ready, then run ``pages`` once per go until told to stop."""
    try:
        model = load_model(model_dir, provider, threads, batch)
    except Exception as exc:  # the parent names the failure; the cause is in the message
        conn.send(f"{model_dir}: cannot load the model in a bare ONNX Runtime process ({exc})")
        return
    model.run(pages[:batch])  # one batch of the real size: the warm-up (memory arenas) costs no round
    conn.send("ready")
    while conn.recv():
        started = time.process_time()
        model.run(pages)
        conn.send(time.process_time() - started)


def _answer(conn: Connection, proc: BaseProcess) -> object:
    """The process's next message; a :class:`BenchError` naming its exit code if it is gone."""
    while not conn.poll(1.0):
        if not proc.is_alive():
            raise BenchError(f"a bare ONNX Runtime process exited with code {proc.exitcode}")
    return conn.recv()


class BarePool:
    """``processes`` bare ONNX Runtime processes over ``pages`` split between them; ``round()`` runs all."""

    def __init__(
        self,
        model_dir: Path,
        pages: np.ndarray,
        processes: int,
        threads: int,
        batch: int = 32,
        provider: Provider = "cpu",
    ) -> None:
        if len(pages) < processes:
            raise BenchError(f"{len(pages)} pages cannot be shared between {processes} processes")
        context = mp.get_context("spawn")  # a fresh interpreter: no ONNX Runtime state crosses a fork
        self._conns: list[Connection] = []
        self._procs: list[BaseProcess] = []
        shares = np.array_split(pages, processes)
        self.shares = [len(share) for share in shares]
        self.cpu_seconds: list[float] = []  # one entry per process and round
        for share in shares:
            parent, child = context.Pipe()
            proc = context.Process(
                target=_serve, args=(child, model_dir, provider, threads, batch, share), daemon=True
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        for conn, started in zip(self._conns, self._procs, strict=True):
            answer = _answer(conn, started)
            if answer != "ready":
                self.close()
                raise BenchError(str(answer))

    def round(self) -> int:
        """Every process runs its share once, at the same time; the pages run in all. The CPU seconds
        the processes spent (all their threads) are added to ``cpu_seconds``."""
        for conn in self._conns:
            conn.send(True)
        for conn, proc in zip(self._conns, self._procs, strict=True):
            answer = _answer(conn, proc)
            if not isinstance(answer, float):
                raise BenchError(f"a bare ONNX Runtime process answered {answer!r} out of turn")
            self.cpu_seconds.append(answer)
        return sum(self.shares)

    def close(self) -> None:
        for conn, proc in zip(self._conns, self._procs, strict=True):
            with contextlib.suppress(OSError):  # already gone
                conn.send(False)
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()

    def __enter__(self) -> BarePool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
