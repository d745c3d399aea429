"""What the demo needs around its child processes (:mod:`docsort.procs`): free ports, a Redis to use
or start, and the demo's own error. Children run in new sessions: Ctrl-C reaches the demo alone, which
then stops them in order."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Mapping
from pathlib import Path

import httpx
import redis

from docsort.procs import Child
from schema.errors import DocsortError
from schema.logs import get_logger

log = get_logger(__name__)


class DemoError(DocsortError):
    """The demo cannot go on; the message says what failed and where its log is."""


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
