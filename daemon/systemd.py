"""sd_notify without libsystemd: READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 over ``$NOTIFY_SOCKET``.

The protocol is one datagram of newline-separated ``KEY=VALUE`` lines to a unix socket whose
path is in ``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). Outside systemd
the variable is unset and every call is a no-op.
"""

from __future__ import annotations

import asyncio
import os
import socket

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Sends notifications to the service manager, if there is one."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if raw.startswith("@"):
            self._address = b"\0" + raw[1:].encode()  # abstract socket
        elif raw.startswith("/"):
            self._address = raw
        self._watchdog_s = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """WatchdogSec= of the unit, if it applies to this process; ping at half of it."""
        return self._watchdog_s

    def notify(self, **fields: str | int) -> bool:
        """Send one datagram; True if it was sent. Failure is logged, never raised: the
        service manager going away must not take the trading process with it."""
        if self._address is None:
            return False
        payload = "\n".join(f"{key.upper()}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # never block the event loop: a receiver whose queue is full (a stuck manager,
                # a test not reading) loses this datagram instead of freezing trading
                sock.setblocking(False)
                sock.sendto(payload, self._address)
        except BlockingIOError:
            log.debug("sd_notify_dropped", reason="receiver queue full")
            return False
        except OSError as exc:
            log.warning("sd_notify_failed", error=str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(ready=1, status=status, mainpid=os.getpid())

    def status(self, status: str) -> bool:
        return self.notify(status=status)

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify(stopping=1, status=status)

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    async def run_watchdog(self) -> None:
        """Ping from the event loop: if the loop blocks, pings stop and systemd restarts us."""
        interval = self._watchdog_s
        if interval is None or not self.enabled:
            return
        while True:
            self.watchdog()
            await asyncio.sleep(interval / 2)


def _watchdog_interval(env: dict[str, str] | os._Environ[str]) -> float | None:
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None  # meant for another process (e.g. our parent shell)
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None
