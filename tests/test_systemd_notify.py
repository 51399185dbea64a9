"""sd_notify over $NOTIFY_SOCKET (path and abstract), and the watchdog interval from WATCHDOG_USEC."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.systemd import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, str(path)
    sock.close()


def _fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


def test_ready_sends_ready_status_and_mainpid(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("quoting on 3 venues")
    fields = _fields(sock.recv(4096))
    assert fields == {"READY": "1", "STATUS": "quoting on 3 venues", "MAINPID": str(os.getpid())}


def test_abstract_namespace_socket_is_supported() -> None:
    name = f"stackmm-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("syncing books")
        assert _fields(sock.recv(4096)) == {"STATUS": "syncing books"}


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready("x") is False
    assert notifier.watchdog_interval_s is None


def test_a_vanished_socket_is_logged_not_raised(tmp_path: Path) -> None:
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).stopping() is False


def test_watchdog_interval_applies_only_to_our_pid() -> None:
    assert Notifier({"WATCHDOG_USEC": "4000000"}).watchdog_interval_s == 4.0
    assert Notifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval_s == 4.0
    assert Notifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}).watchdog_interval_s is None


async def test_watchdog_pings_from_the_event_loop(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    sock.setblocking(False)
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"})
    task = asyncio.create_task(notifier.run_watchdog())
    loop = asyncio.get_running_loop()
    try:
        pings = [await asyncio.wait_for(loop.sock_recv(sock, 4096), 5) for _ in range(3)]
    finally:
        task.cancel()
    assert all(_fields(p) == {"WATCHDOG": "1"} for p in pings)


async def test_a_receiver_that_does_not_read_never_blocks_the_sender(
    notify_socket: tuple[socket.socket, str],
) -> None:
    _, path = notify_socket  # bound, never read: its queue fills after a few datagrams
    notifier = Notifier({"NOTIFY_SOCKET": path})
    results = await asyncio.wait_for(
        asyncio.to_thread(lambda: [notifier.status(f"line {i}") for i in range(200)]), timeout=10
    )
    assert results[0] is True
    assert results[-1] is False  # dropped, not blocked
