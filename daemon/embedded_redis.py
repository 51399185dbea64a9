"""The daemon's own redis-server when no ``STACKMM_REDIS_URL`` is set.

Data (AOF) lives under ``<state_dir>/redis``; the URL is written to ``<state_dir>/redis.url``
so ``stackmm status`` on the same host finds it without configuration. A port is kept across
restarts when it is still free, so an operator's ``redis-cli -p`` keeps working.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import structlog

from daemon.redis_server import RedisServer, free_tcp_port

log = structlog.get_logger(__name__)

URL_FILE = "redis.url"
PID_FILE = "redis.pid"


def url_file(state_dir: Path) -> Path:
    return state_dir / URL_FILE


def discover_url(state_dir: Path) -> str | None:
    """The URL of the embedded Redis of the daemon using ``state_dir``, if one was started."""
    path = url_file(state_dir)
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


class EmbeddedRedis:
    """Start/stop a persistent private redis-server under the state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._server: RedisServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded Redis is not running")
        return self._server.url

    @property
    def pid(self) -> int | None:
        proc = self._server.process if self._server else None
        return proc.pid if proc else None

    def start(self) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._kill_leftover()
        port = self._previous_port()
        if port is None or not _port_free(port):
            port = free_tcp_port()
        server = RedisServer(directory=self.state_dir / "redis", port=port, persist=True, own_session=True)
        server.start()
        self._server = server
        if server.process is not None:
            (self.state_dir / PID_FILE).write_text(str(server.process.pid), encoding="utf-8")
        url_file(self.state_dir).write_text(server.url + "\n", encoding="utf-8")
        log.info("embedded_redis_started", url=server.url, directory=str(server.directory))
        return server.url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        for name in (PID_FILE, URL_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / name).unlink()
        log.info("embedded_redis_stopped")

    def _previous_port(self) -> int | None:
        url = discover_url(self.state_dir)
        if not url:
            return None
        try:
            return int(url.rsplit(":", 1)[1].split("/", 1)[0])
        except (IndexError, ValueError):
            return None

    def _kill_leftover(self) -> None:
        """A daemon killed with SIGKILL leaves its redis-server behind: stop that one first,
        so two servers never write the same AOF."""
        pid_path = self.state_dir / PID_FILE
        try:
            pid = int(pid_path.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"redis-server" in cmdline:
            log.warning("embedded_redis_leftover_stopped", pid=pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                _wait_gone(pid)
        pid_path.unlink(missing_ok=True)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return
        try:
            # reap it if it happens to be our child (it never is across restarts, but be safe)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
