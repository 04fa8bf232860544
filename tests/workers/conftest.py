"""Fixtures of the worker tests: a real ``redis-server`` and real worker processes.

The Redis server is started by the test itself (127.0.0.1, a random port, no persistence, so a
restart loses every message, as a Redis without AOF does). Without ``redis-server`` the Redis tests
are skipped *loudly* on a laptop and fail in CI (``CI`` set), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--dir", str(self.workdir), "--protected-mode", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        """kill -9 and start again on the same port: every queued message is gone."""
        self.kill()
        self.start()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed, so the Redis worker tests cannot run"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have it: see .ci/run)")
        warnings.warn(message, stacklevel=1)
        pytest.skip(f"!!! {message} !!!")
    server = RedisServer(binary, tmp_path)
    yield server
    server.kill()


class WorkerProcess:
    """``python -m workers worker`` as a child process, its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path, threads: int = 4, *, cli: bool = False) -> None:
        self.log = log
        self.out = log.open("ab")
        # the `synchub worker` script, or `python -m workers worker`: the same code
        program = [str(Path(sys.executable).parent / "synchub")] if cli else [sys.executable, "-m", "workers"]
        self.proc = subprocess.Popen(
            [*program, "worker", "--threads", str(threads)],
            cwd=ROOT,
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        # 60 s: in a fault storm on 2 cores a worker's start (imports, the hub's check, the ERP's login
        # to a busy trytond, Redis perhaps restarting) has taken over 30 s
        deadline = time.monotonic() + 60
        while b"synchub worker ready" not in log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.out.close()
