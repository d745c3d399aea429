"""``docsort demo`` end to end, as a subprocess with a tiny configuration (real training, real processes)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from docsort.demo_procs import free_port
from tests.support.demo import (
    demo_command,
    demo_env,
    marked_processes,
    new_mark,
    outcome_counts,
    prediction_workers,
)
from tests.support.services_env import REDIS_URL

pytestmark = pytest.mark.slow


def _no_process_left(mark: str) -> None:
    deadline = time.monotonic() + 10
    while marked_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked_processes(mark) == []


@pytest.mark.timeout(300)
def test_demo_once_shows_all_three_outcomes_and_leaves_no_process_or_queue(tmp_path: Path) -> None:
    mark, port = new_mark(), free_port()
    command = demo_command(tmp_path / "demo", port, "--once", "--broker-url", REDIS_URL)
    done = subprocess.run(command, env=demo_env(mark), capture_output=True, text=True, timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    counts = outcome_counts(output)
    assert counts["auto"] > 0 and counts["review"] > 0 and counts["failed"] == 2, output[-3000:]
    assert f"review page: http://127.0.0.1:{port}/" in output
    assert "stopped: watch" in output and "worker (pid" in output and "web (pid" in output
    _no_process_left(mark)
    queue = re.search(r"queue (docsort-demo-[0-9a-f]+)", output)
    assert queue is not None, output[-3000:]
    client = redis.Redis.from_url(REDIS_URL)
    assert list(client.scan_iter(match=f"*{queue.group(1)}*")) == []
    workers = prediction_workers(tmp_path / "demo" / "data" / "docsort.db")
    assert workers and all(w.split(":")[-1].isdigit() for w in workers)


@pytest.mark.timeout(300)
def test_demo_without_redis_runs_the_task_code_in_process_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    mark, port, dead = new_mark(), free_port(), free_port()
    workdir = tmp_path / "demo"
    command = demo_command(workdir, port, "--broker-url", f"redis://127.0.0.1:{dead}/0", "--no-start-redis")
    out_path = tmp_path / "demo-output.txt"
    with out_path.open("w") as out:
        proc = subprocess.Popen(command, env=demo_env(mark), stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while "Ctrl-C stops everything" not in out_path.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, out_path.read_text()[-4000:]
            time.sleep(0.5)
        assert proc.poll() is None, out_path.read_text()[-4000:]
        commands = [cmd for _, cmd in marked_processes(mark)]
        assert any("docsort.cli serve" in c for c in commands), commands  # the web application runs
        assert not any("docsort.cli worker" in c or "docsort.cli watch" in c for c in commands), commands
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    output = out_path.read_text()
    assert "EMBEDDED MODE" in output
    counts = outcome_counts(output)
    assert counts["auto"] > 0 and counts["review"] > 0 and counts["failed"] == 2, output[-3000:]
    pid = re.search(r"threads of this process \(pid (\d+)\)", output)
    assert pid is not None and int(pid.group(1)) == proc.pid
    assert {w.split(":")[-1] for w in prediction_workers(workdir / "data" / "docsort.db")} == {str(proc.pid)}
    assert '"job.processed"' in (workdir / "logs" / "demo.log").read_text()
    assert "stopped: embedded worker and watcher, web (pid" in output
    _no_process_left(mark)
