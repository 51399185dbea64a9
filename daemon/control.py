"""Operator commands over Redis: a command stream in, an acknowledgement stream out.

``stackmm pause`` on any host that reaches the instance's Redis appends ``{command, actor,
host}`` to ``stackmm:<instance>:control``; the daemon reads the stream, executes the command,
writes it to the SQLite audit log and appends ``{command_id, ok, message}`` to
``...:control-acks``. The command id is the stream entry id Redis assigned, so it is unique
without coordination.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from daemon.redis_keys import RedisKeys

log = structlog.get_logger(__name__)

COMMANDS = ("pause", "resume", "cancel-all")
STREAM_MAXLEN = 1000  # both streams are bounded; they are a mailbox, not a history (SQLite is)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


@dataclass(frozen=True, slots=True)
class Command:
    """One operator command as read from the control stream."""

    id: str
    name: str
    actor: str
    host: str = ""
    ts: float = 0.0
    args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ack:
    """The daemon's answer to one command."""

    command_id: str
    ok: bool
    message: str
    instance: str = ""
    ts: float = 0.0


class CommandRejected(Exception):
    """Raised by an executor when a command cannot be carried out; the ack says why."""


class AckTimeout(TimeoutError):
    """No acknowledgement arrived: the daemon is not running or cannot reach Redis."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def default_actor() -> str:
    """``user@host``: who sent a command, as the audit log records it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def send_command(
    client: aioredis.Redis,
    keys: RedisKeys,
    name: str,
    *,
    actor: str | None = None,
    wait_s: float = 10.0,
) -> Ack:
    """Send ``name`` to the instance and wait for its acknowledgement."""
    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}; one of {', '.join(COMMANDS)}")
    # read position of the ack stream before sending, so an ack written before our first
    # XREAD is not missed
    last: Any = await client.xrevrange(keys.control_acks, count=1)
    since = _text(last[0][0]) if last else "0-0"
    command: dict[Any, Any] = {
        "command": name, "actor": actor or default_actor(), "host": socket.gethostname(),
        "ts": f"{time.time():.3f}",
    }
    command_id = _text(
        await client.xadd(
            keys.control,
            command,
            maxlen=STREAM_MAXLEN,
            approximate=True,
        )
    )
    deadline = time.monotonic() + wait_s
    while (remaining := deadline - time.monotonic()) > 0:
        block_ms = max(1, int(min(remaining, 1.0) * 1000))
        replies: Any = await client.xread({keys.control_acks: since}, block=block_ms, count=100)
        for _stream, entries in replies or []:
            for entry_id, raw in entries:
                since = _text(entry_id)
                fields = _fields(raw)
                if fields.get("command_id") == command_id:
                    return Ack(
                        command_id=command_id,
                        ok=fields.get("ok") == "1",
                        message=fields.get("message", ""),
                        instance=fields.get("instance", ""),
                        ts=float(fields.get("ts", "0") or 0),
                    )
    raise AckTimeout(
        f"no acknowledgement for {name} (command {command_id}) within {wait_s:g}s: "
        f"is instance {keys.instance!r} running and connected to this Redis?"
    )


Executor = Callable[[Command], Awaitable[str]]
Auditor = Callable[[str, str, dict[str, Any]], Awaitable[None]]


class ControlListener:
    """The daemon's side: read commands, execute, audit, acknowledge.

    Survives Redis outages by itself (logs once, retries), so it never counts as a dying task.
    Only commands sent after the listener first started are executed: a ``pause`` typed while
    the daemon was down must not surprise the operator hours later.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: RedisKeys,
        execute: Executor,
        audit: Auditor | None = None,
        retry_s: float = 1.0,
    ) -> None:
        self._client = client
        self._keys = keys
        self._execute = execute
        self._audit = audit
        self._retry_s = retry_s
        self._last_id: str | None = None
        self.started = asyncio.Event()  # set once the read position is fixed

    async def run(self) -> None:
        redis_down = False
        while True:
            try:
                if self._last_id is None:
                    last: Any = await self._client.xrevrange(self._keys.control, count=1)
                    self._last_id = _text(last[0][0]) if last else "0-0"
                    self.started.set()
                replies: Any = await self._client.xread(
                    {self._keys.control: self._last_id}, block=1000, count=10
                )
                if redis_down:
                    log.info("control_redis_back")
                    redis_down = False
                for _stream, entries in replies or []:
                    for entry_id, raw in entries:
                        self._last_id = _text(entry_id)
                        await self._handle(self._command(self._last_id, _fields(raw)))
            except REDIS_DOWN as exc:
                if not redis_down:
                    log.warning("control_redis_unavailable", error=str(exc))
                    redis_down = True
                await asyncio.sleep(self._retry_s)

    @staticmethod
    def _command(entry_id: str, fields: dict[str, str]) -> Command:
        try:
            ts = float(fields.get("ts", "0"))
        except ValueError:
            ts = 0.0
        reserved = {"command", "actor", "host", "ts"}
        return Command(
            id=entry_id,
            name=fields.get("command", ""),
            actor=fields.get("actor", "unknown"),
            host=fields.get("host", ""),
            ts=ts,
            args={k: v for k, v in fields.items() if k not in reserved},
        )

    async def _handle(self, command: Command) -> None:
        log.info("control_command", command=command.name, actor=command.actor, id=command.id)
        if command.name not in COMMANDS:
            ok, message = False, f"unknown command {command.name!r}"
        else:
            try:
                message = await self._execute(command)
                ok = True
            except CommandRejected as exc:
                ok, message = False, str(exc)
        if self._audit is not None:
            await self._audit(
                command.actor, command.name,
                {"command_id": command.id, "host": command.host, "ok": ok, "message": message},
            )
        ack: dict[Any, Any] = {"command_id": command.id, "ok": "1" if ok else "0", "message": message,
             "instance": self._keys.instance, "ts": f"{time.time():.3f}"}
        await self._client.xadd(self._keys.control_acks, ack, maxlen=STREAM_MAXLEN, approximate=True)
        log.info("control_acknowledged", command=command.name, id=command.id, ok=ok, message=message)
