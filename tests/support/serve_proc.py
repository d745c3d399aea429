"""A real ``docsort serve`` subprocess on a free port, with the test's ``DOCSORT_*`` environment.

with ServeProcess(tmp_path / "serve.log", DOCSORT_LOG_FORMAT="json") as server:
    httpx.get(server.url + "/login")
    server.log()
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.review import csrf_of


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``docsort serve`` in its own process group; stopped (SIGKILL if need be) when the block ends."""

    def __init__(self, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServeProcess:
        command = [sys.executable, "-m", "docsort.cli", "serve", "--port", str(self.port)]
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                command, env=self.env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            assert self.proc.poll() is None, f"docsort serve exited:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"docsort serve did not listen:\n{self.log()[-3000:]}"
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def memory_mib(self, field: str) -> int:
        """``VmRSS`` or ``VmHWM`` (peak) of the server process, MiB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
        assert found, status
        return int(found.group(1)) // 1024

    def reset_peak_memory(self) -> None:
        """Start ``VmHWM`` again from the current RSS (Linux ``clear_refs``)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")


def post_login(client: httpx.Client, name: str, password: str) -> httpx.Response:
    """Submit the login form as a browser does (its CSRF token first)."""
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token})
