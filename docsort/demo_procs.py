"""Child processes of ``docsort demo``: started in their own process group, logged to files, stopped cleanly.

Every child runs in a new session (Ctrl-C reaches the demo alone, which then stops the children in
order), is asked to die with the demo if the demo itself is killed (Linux ``PR_SET_PDEATHSIG``), and is
stopped with SIGTERM, then its whole process group with SIGKILL after a grace period, so that no pool
process or grandchild is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
import redis

from schema.errors import DocsortError
from schema.logs import get_logger

log = get_logger(__name__)
PR_SET_PDEATHSIG = 1


class DemoError(DocsortError):
    """The demo cannot go on; the message says what failed and where its log is."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def docsort_command(*args: str) -> list[str]:
    """``docsort ARGS`` run by this Python (no dependence on PATH)."""
    return [sys.executable, "-m", "docsort.cli", *args]


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Child:
    """One running child process whose output goes to ``log_path``."""

    def __init__(self, name: str, command: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path):
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=str(cwd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        log.info("demo.child_started", name=name, pid=self.proc.pid, command=" ".join(command))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def failure(self, what: str) -> DemoError:
        return DemoError(
            f"{self.name} {what} (exit code {self.proc.poll()}); its log is {self.log_path}:\n"
            f"{log_tail(self.log_path)}"
        )

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until it holds; DemoError if the process exits first or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if not self.alive():
                raise self.failure(f"exited before {what}")
            time.sleep(0.2)
        raise self.failure(f"not {what} after {timeout:.0f} s")

    def wait_for_log(self, marker: str, timeout: float) -> None:
        self.wait_until(lambda: marker in self.log_text(), timeout, f"ready ({marker!r} not logged)")

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM (finish the work in hand), then SIGKILL to the whole process group."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # pool processes or grandchildren left behind
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        log.info("demo.child_stopped", name=self.name, pid=self.proc.pid, returncode=self.proc.returncode)
        return self.proc.returncode


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server answers PING at ``url``."""
    if not url.startswith(("redis://", "rediss://")):
        return False
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def start_private_redis(folder: Path, env: Mapping[str, str], log_path: Path) -> tuple[Child, str] | None:
    """A throw-away ``redis-server`` on a free local port (no persistence), if one is installed."""
    server = shutil.which("redis-server")
    if server is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    child = Child("redis", [*command, "--dir", str(folder)], env, folder, log_path)
    url = f"redis://127.0.0.1:{port}/0"
    child.wait_until(lambda: redis_answers(url, 0.5), 20.0, "answering PING")
    return child, url


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def forget_queue(url: str, marker: str) -> int:
    """Delete the Redis keys whose name holds ``marker`` (the demo's unique queue and node names), and
    the demo's entries in kombu's shared binding sets. Returns how many keys were deleted."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"*{marker}*", count=500))
        for shared in client.scan_iter(match="_kombu.binding.*", count=500):
            if client.type(shared) != b"set":
                continue
            mine = [m for m in client.smembers(shared) if marker.encode() in m]
            if mine:
                client.srem(shared, *mine)
        return int(client.delete(*keys)) if keys else 0
    except (redis.RedisError, OSError) as exc:
        log.warning("demo.redis_cleanup_failed", error=str(exc))
        return 0
    finally:
        client.close()
