"""The real daemon process (`stackmm run`) against the paper venue over 127.0.0.1 and a real Redis.

One paper venue process serves the whole module; each test starts its own daemon with its
own instance name, and learns what the daemon does the way systemd does: from the
datagrams on ``$NOTIFY_SOCKET`` (READY=1, STATUS=...). What is on the venues is checked
with the unmodified ccxt client, as any other client of the venue would see it.
"""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import aiosqlite
import orjson
import pytest
import redis.asyncio as aioredis

from daemon.redis_keys import RedisKeys
from daemon.redis_server import RedisServer
from daemon.status import read_status
from tests.fixtures.daemon import SECRETS, SYMBOL, make_daemon, own_orders, until, venue_clients, venues

pytestmark = pytest.mark.slow
__all__ = ["make_daemon", "venue_clients", "venues"]  # fixtures used by name below


async def test_ready_is_notified_once_quoting_and_status_shows_the_quotes(
    make_daemon: Any, redis_url: str, venue_clients: dict[str, Any]
) -> None:
    daemon = make_daemon(redis_url)
    await daemon.wait_ready()
    orders = await own_orders(venue_clients, daemon.instance)
    assert sum(len(o) for o in orders.values()) > 0  # READY means quotes are resting

    result = daemon.run_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["alive"] is True and status["status"] == "ready"
    assert {q["venue"] for q in status["quotes"]} == {"alpha", "beta"}
    assert {q["line_id"] for q in status["quotes"]} >= {"pas"}
    assert all(f["state"] == "in_sync" for f in status["feeds"].values())

    text = daemon.run_cli("status")
    assert "line pas" in text.stdout and f"instance {daemon.instance}: ready" in text.stdout
    assert daemon.terminate() == 0


async def test_pause_removes_all_quotes_and_resume_brings_them_back(
    make_daemon: Any, redis_url: str, venue_clients: dict[str, Any], tmp_path: Path
) -> None:
    daemon = make_daemon(redis_url)
    await daemon.wait_ready()

    paused = daemon.run_cli("pause")
    assert paused.returncode == 0, paused.stderr
    assert re.search(r"pause \S+: ok: paused; [1-9]\d* orders taken off", paused.stdout), paused.stdout
    # the acknowledgement comes after cancel_all confirmed: nothing of ours rests anywhere
    assert await own_orders(venue_clients, daemon.instance) == {"alpha": [], "beta": []}
    await daemon.wait_status(r"^paused: 0 quotes")

    resumed = daemon.run_cli("resume")
    assert resumed.returncode == 0 and "ok: resumed" in resumed.stdout
    await daemon.wait_status(r"^ready: [1-9]\d* quotes")

    async def quoting_again() -> bool:
        orders = await own_orders(venue_clients, daemon.instance)
        return all(orders.values())

    await until(quoting_again)
    assert daemon.terminate() == 0
    # every command is in the SQLite audit log with who sent it
    async with aiosqlite.connect(tmp_path / "state" / f"{daemon.instance}.sqlite") as db:
        rows = await (await db.execute("SELECT action FROM audit ORDER BY id")).fetchall()
    actions = [r[0] for r in rows]
    assert actions.index("pause") < actions.index("resume")


async def test_sigterm_cancels_every_order_exits_zero_and_never_logs_a_secret(
    make_daemon: Any, redis_url: str, venue_clients: dict[str, Any]
) -> None:
    daemon = make_daemon(redis_url)
    await daemon.wait_ready()
    assert any((await own_orders(venue_clients, daemon.instance)).values())
    started = time.monotonic()
    assert daemon.terminate() == 0
    assert time.monotonic() - started < 10 + 2  # within the shutdown timeout (plus process exit)
    assert await own_orders(venue_clients, daemon.instance) == {"alpha": [], "beta": []}
    output = daemon.log.read_text(errors="replace")
    assert "order_manager_stopped" in output
    for secret in SECRETS:
        assert secret not in output
    assert not re.search(r"signature=[0-9a-f]{16}", output)
    snap_client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        snap = await read_status(snap_client, RedisKeys(daemon.instance))
    finally:
        await snap_client.aclose()
    assert snap.status == "stopping" and snap.quotes == []


async def test_sighup_with_a_broken_yaml_keeps_the_old_config_and_a_valid_one_applies(
    make_daemon: Any, redis_url: str, venue_clients: dict[str, Any]
) -> None:
    daemon = make_daemon(redis_url, passive_quantity=40)
    await daemon.wait_ready()
    good = daemon.config.read_text()
    daemon.config.write_text(good.replace("quantity: 40", "quantity: forty"))
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGHUP)

    async def rejected() -> bool:
        return any(e.get("event") == "config_reload_rejected" for e in daemon.events())

    await until(rejected)
    [event] = [e for e in daemon.events() if e.get("event") == "config_reload_rejected"]
    assert "passive_lines[0].quantity" in " ".join(event["problems"])
    assert daemon.process.poll() is None  # still running, still quoting the old sizes

    async def passive_sizes() -> set[float]:
        orders = await own_orders(venue_clients, daemon.instance)
        return {float(o["amount"]) for v in orders.values() for o in v if "-pas" in o["clientOrderId"]}

    assert await until(passive_sizes) == {40.0}

    daemon.config.write_text(good.replace("quantity: 40", "quantity: 55"))
    daemon.process.send_signal(signal.SIGHUP)

    async def resized() -> bool:
        return await passive_sizes() == {55.0}

    await until(resized)
    assert any(e.get("event") == "config_reloaded" for e in daemon.events())
    assert daemon.terminate() == 0


async def test_a_killed_redis_does_not_stop_quoting_and_the_mirror_recovers(
    make_daemon: Any, tmp_path: Path, venue_clients: dict[str, Any]
) -> None:
    server = RedisServer(directory=tmp_path / "redis")
    server.start()
    port = server.port
    try:
        daemon = make_daemon(server.url)
        await daemon.wait_ready()
        keys = RedisKeys(daemon.instance)
        resting = await own_orders(venue_clients, daemon.instance)
        before = {o["clientOrderId"] for orders in resting.values() for o in orders}
        server.stop()

        async def new_orders_placed() -> bool:
            now = await own_orders(venue_clients, daemon.instance)
            return any(o["clientOrderId"] not in before for orders in now.values() for o in orders)

        # quotes keep being refreshed on the venues while Redis is gone
        await until(new_orders_placed, within_s=40)
        assert daemon.process is not None and daemon.process.poll() is None

        server = RedisServer(directory=tmp_path / "redis", port=port)
        server.start()
        client = aioredis.Redis.from_url(server.url, decode_responses=True)
        try:
            async def mirrored_again() -> bool:
                # the venue books and the aggregated book they feed (written with them)
                found = await client.exists(
                    keys.book("alpha", SYMBOL), keys.aggregated_book(SYMBOL), keys.health
                )
                return bool(found == 3)

            await until(mirrored_again)
            snap = await read_status(client, keys)
            assert snap.alive and snap.quotes
            aggregated = await client.hgetall(keys.aggregated_book(SYMBOL))
            assert sorted(orjson.loads(aggregated["venues"])) == ["alpha", "beta"]
        finally:
            await client.aclose()
        assert any(e.get("event") == "redis_mirror_unavailable" for e in daemon.events())
        assert daemon.terminate() == 0
    finally:
        server.stop()
