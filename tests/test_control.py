"""pause / resume / cancel-all travel through Redis, are executed, audited and acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from daemon.commands import control as control_cmd
from daemon.control import AckTimeout, Command, CommandRejected, ControlListener, send_command
from daemon.redis_keys import RedisKeys
from daemon.redis_server import RedisServer
from daemon.store import Store


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield c
    await c.aclose()


class Daemonish:
    """The executor side of a daemon: records what it was told to do."""

    def __init__(self) -> None:
        self.executed: list[Command] = []
        self.paused = False

    async def execute(self, command: Command) -> str:
        self.executed.append(command)
        if command.name == "resume" and not self.paused:
            raise CommandRejected("not paused")
        self.paused = command.name == "pause"
        return f"{command.name} done"


async def _listening(client: aioredis.Redis, keys: RedisKeys, daemon: Daemonish, store: Store | None = None
                     ) -> tuple[ControlListener, asyncio.Task[None]]:
    listener = ControlListener(client, keys, daemon.execute, store.audit if store else None, retry_s=0.05)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.started.wait(), 5)
    return listener, task


async def test_a_command_is_executed_acknowledged_and_audited(
    client: aioredis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    keys = RedisKeys(key_prefix)
    daemon = Daemonish()
    store = await Store.open(tmp_path / "stackmm.sqlite")
    _, task = await _listening(client, keys, daemon, store)
    try:
        ack = await send_command(client, keys, "pause", actor="ops@desk", wait_s=5)
        assert ack.ok and ack.message == "pause done" and ack.instance == key_prefix
        assert [c.name for c in daemon.executed] == ["pause"] and daemon.paused
        assert daemon.executed[0].actor == "ops@desk"
        [(_, actor, action, detail)] = await store.audit_log()
        assert (actor, action) == ("ops@desk", "pause")
        assert ack.command_id in detail
    finally:
        task.cancel()
        await store.close()


async def test_a_rejected_command_is_acknowledged_as_not_ok(client: aioredis.Redis, key_prefix: str) -> None:
    keys = RedisKeys(key_prefix)
    _, task = await _listening(client, keys, Daemonish())
    try:
        ack = await send_command(client, keys, "resume", wait_s=5)
        assert not ack.ok and ack.message == "not paused"
    finally:
        task.cancel()


async def test_unknown_commands_are_refused_by_the_sender(client: aioredis.Redis, key_prefix: str) -> None:
    with pytest.raises(ValueError, match="unknown command"):
        await send_command(client, RedisKeys(key_prefix), "liquidate", wait_s=1)


async def test_no_daemon_means_a_timeout_that_says_so(client: aioredis.Redis, key_prefix: str) -> None:
    with pytest.raises(AckTimeout, match=r"is instance .* running"):
        await send_command(client, RedisKeys(key_prefix), "cancel-all", wait_s=0.3)


async def test_commands_sent_before_the_daemon_started_are_not_executed(
    client: aioredis.Redis, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    await client.xadd(keys.control, {"command": "pause", "actor": "yesterday"})
    daemon = Daemonish()
    _, task = await _listening(client, keys, daemon)
    try:
        await send_command(client, keys, "cancel-all", wait_s=5)
        assert [c.name for c in daemon.executed] == ["cancel-all"]
    finally:
        task.cancel()


async def test_listener_survives_a_redis_restart(tmp_path: Path, key_prefix: str) -> None:
    server = RedisServer(directory=tmp_path / "r")
    server.start()
    port = server.port
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    keys = RedisKeys(key_prefix)
    daemon = Daemonish()
    _, task = await _listening(client, keys, daemon)
    try:
        server.stop()
        server = RedisServer(directory=tmp_path / "r", port=port)
        server.start()
        ack = await send_command(client, keys, "pause", wait_s=10)
        assert ack.ok and daemon.paused
    finally:
        task.cancel()
        await client.aclose()
        server.stop()


async def test_cli_sends_and_prints_the_acknowledgement(
    client: aioredis.Redis, redis_url: str, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = RedisKeys(key_prefix)
    daemon = Daemonish()
    _, task = await _listening(client, keys, daemon)
    try:
        argv = ["--redis-url", redis_url, "--instance", key_prefix, "--actor", "cli-test"]
        code = await asyncio.to_thread(control_cmd.main, argv, "pause")
        assert code == 0
        assert f"pause {key_prefix}: ok: pause done\n" in capsys.readouterr().out
        code = await asyncio.to_thread(control_cmd.main, [*argv, "--timeout", "5"], "cancel-all")
        assert code == 0
        assert [c.name for c in daemon.executed] == ["pause", "cancel-all"]
    finally:
        task.cancel()


def test_cli_without_a_daemon_exits_non_zero(redis_url: str, key_prefix: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--redis-url", redis_url, "--instance", key_prefix, "--timeout", "0.2"]
    assert control_cmd.main(argv, "resume") == 1
    assert "no acknowledgement" in capsys.readouterr().err
