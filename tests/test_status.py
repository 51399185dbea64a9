"""State published by the daemon reads back as `stackmm status` (text and JSON) and `stackmm inspect`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from daemon.commands import inspect as inspect_cmd
from daemon.commands import status as status_cmd
from daemon.embedded_redis import EmbeddedRedis, discover_url
from daemon.redis_keys import RedisKeys
from daemon.state_publisher import FeedHealth, PnlTracker, StatePublisher, StateSnapshot
from daemon.status import read_status, render_json, render_text
from strategies.types import Fill, Side

SYMBOL = "BERA/USDT"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield c
    await c.aclose()


def _fill(venue: str, side: Side, price: str, qty: str) -> Fill:
    return Fill(venue=venue, symbol="BERA/USDT", side=side, price=Decimal(price), qty=Decimal(qty),
                fee=Decimal("0.01"), fee_asset="USDT", trade_id=f"{venue}-{price}", client_order_id="c",
                line_id="tob", ts=0.0)


def _snapshot(pnl: PnlTracker, orders: bool = True) -> StateSnapshot:
    quotes = {
        "alpha": {
            "mm-tob-1": {"side": "buy", "price": "2.1000", "size": "50", "line_id": "tob", "symbol": SYMBOL},
            "mm-tob-2": {"side": "sell", "price": "2.1100", "size": "50", "line_id": "tob", "symbol": SYMBOL},
        },
        "beta": {"mm-pas-1": {"side": "buy", "price": "2.0500", "size": "80", "line_id": "passive"}},
    } if orders else {"alpha": {}, "beta": {}}
    return StateSnapshot(
        status="ready",
        warnings=["gamma book stale"],
        feeds={
            "alpha:BERA/USDT": FeedHealth("in_sync", 0.2, 1),
            "gamma:BERA/USDT": FeedHealth("stale", 9.0, 0, "silent"),
        },
        tasks={"feed:alpha": "running"},
        orders=quotes,
        lines={"tob": {"active_orders": 2, "placed": 10}, "passive": {"active_orders": 1}},
        inventory={"BERA": {"position": 120.5, "target": 100.0, "coefficient": 0.92}},
        coefficients={"alpha": 1.1, "inventory": 0.92},
        pnl=pnl.to_dict(),
        config_path="config/bera-usdt.yaml",
    )


async def _publish(client: aioredis.Redis, keys: RedisKeys, snapshot: StateSnapshot) -> StatePublisher:
    publisher = StatePublisher(client, keys, lambda: snapshot)
    assert await publisher.publish()
    return publisher


async def test_published_state_reads_back_as_a_status_snapshot(
    client: aioredis.Redis, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    pnl = PnlTracker()
    pnl.on_fill(_fill("alpha", Side.BUY, "2.10", "10"))
    pnl.on_fill(_fill("beta", Side.SELL, "2.12", "4"))
    pnl.on_mark(2.11)
    await _publish(client, keys, _snapshot(pnl))
    snap = await read_status(client, keys)
    assert snap.status == "ready" and snap.alive
    assert {(q.venue, q.line_id, q.side, q.price) for q in snap.quotes} == {
        ("alpha", "tob", "buy", "2.1000"),
        ("alpha", "tob", "sell", "2.1100"),
        ("beta", "passive", "buy", "2.0500"),
    }
    assert snap.feeds["gamma:BERA/USDT"]["state"] == "stale"
    assert snap.inventory["BERA"]["position"] == 120.5
    assert snap.coefficients == {"alpha": 1.1, "inventory": 0.92}
    assert snap.pnl["fills"] == 2 and snap.pnl["fills_by_venue"] == {"alpha": 1, "beta": 1}
    # cash -21.0 + 8.48, fees 0.02, position 6 marked at 2.11
    assert snap.pnl["pnl_quote"] == pytest.approx(-21.0 + 8.48 - 0.02 + 6 * 2.11)
    assert set(snap.lines) == {"tob", "passive"} and snap.lines["tob"]["placed"] == "10"


def test_pnl_values_fills_in_another_quote_at_its_rate() -> None:
    pnl = PnlTracker("USDT")
    pnl.on_fill(_fill("alpha", Side.BUY, "2.00", "10"))  # -20 USDT, fee 0.01 USDT
    cross = Fill(venue="beta", symbol="BERA/BTC", side=Side.SELL, price=Decimal("0.00003"), qty=Decimal("10"),
                 fee=Decimal("0.1"), fee_asset="BERA", trade_id="x", client_order_id="c", line_id="l", ts=0.0)
    pnl.on_fill(cross)  # +0.0003 BTC, fee 0.1 BERA = 0.000003 BTC
    pnl.on_mark(2.10)
    assert pnl.pnl_quote() is None  # BTC has no price yet: no made-up number
    pnl.on_rate("BTC", 70_000.0)
    # cash -20 + 0.0003·70000 = 1.0; fees 0.01 + 0.000003·70000 = 0.22; position 0
    assert pnl.pnl_quote() == pytest.approx(1.0 - 0.22)
    assert pnl.to_dict()["fills_by_venue"] == {"alpha": 1, "beta": 1}


async def test_quotes_that_are_gone_disappear_from_redis(client: aioredis.Redis, key_prefix: str) -> None:
    keys = RedisKeys(key_prefix)
    pnl = PnlTracker()
    state = {"snap": _snapshot(pnl)}
    publisher = StatePublisher(client, keys, lambda: state["snap"])
    await publisher.publish()
    state["snap"] = _snapshot(pnl, orders=False)
    state["snap"].lines = {"tob": {}}
    await publisher.publish()
    snap = await read_status(client, keys)
    assert snap.quotes == []
    assert set(snap.lines) == {"tob"}
    assert not await client.exists(keys.line("passive"))


async def test_publisher_coalesces_bursts_of_changes(client: aioredis.Redis, key_prefix: str) -> None:
    calls = 0

    def snapshot() -> StateSnapshot:
        nonlocal calls
        calls += 1
        return StateSnapshot(status="ready")

    publisher = StatePublisher(client, RedisKeys(key_prefix), snapshot, interval_s=0.2)
    task = asyncio.create_task(publisher.run())
    try:
        published = publisher.published
        for _ in range(100):
            publisher.mark_dirty()
        await asyncio.wait_for(published.wait(), 5)
        for _ in range(100):
            publisher.mark_dirty()
        await asyncio.wait_for(publisher.published.wait(), 5)
    finally:
        task.cancel()
    assert calls <= 3  # 200 changes, two or three writes


async def test_risk_events_go_to_a_bounded_stream(client: aioredis.Redis, key_prefix: str) -> None:
    keys = RedisKeys(key_prefix)
    publisher = StatePublisher(client, keys, lambda: StateSnapshot(status="ready"))
    publisher.add_risk_event({"kind": "max_position", "detail": "BERA 1200 > 1000"})
    await publisher.publish()
    snap = await read_status(client, keys)
    assert snap.risk_events == [{"kind": "max_position", "detail": "BERA 1200 > 1000"}]
    assert "risk max_position: BERA 1200 > 1000" in render_text(snap)


async def test_text_report_shows_books_quotes_inventory_fills_and_warnings(
    client: aioredis.Redis, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    await client.hset(keys.book("alpha", "BERA/USDT"), mapping={
        "bids": json.dumps([["2.1000", "150"], ["2.0990", "10"]]), "asks": json.dumps([["2.1100", "90"]]),
        "seq": "77", "ts": "1700000000.0", "state": "in_sync", "resync_count": "0"})
    pnl = PnlTracker()
    pnl.on_fill(_fill("alpha", Side.BUY, "2.10", "10"))
    await _publish(client, keys, _snapshot(pnl))
    text = render_text(await read_status(client, keys))
    assert f"instance {key_prefix}: ready" in text
    assert "alpha BERA/USDT" in text and "2.1" in text and "47.5bp" in text
    assert "line tob" in text and "mm-tob-2" in text and "line passive" in text
    assert "BERA" in text and "coefficients" in text
    assert "fills 1 (alpha 1)" in text
    assert "! gamma book stale" in text


async def test_a_dead_instance_is_reported_as_not_running(client: aioredis.Redis, key_prefix: str) -> None:
    keys = RedisKeys(key_prefix)
    await client.hset(keys.health, mapping={"status": "ready", "heartbeat": "1000.0"})
    snap = await read_status(client, keys)
    assert not snap.alive
    assert "NOT RUNNING?" in render_text(snap)
    assert json.loads(render_json(snap))["alive"] is False


async def test_status_cli_prints_json_for_machines(
    client: aioredis.Redis, redis_url: str, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = RedisKeys(key_prefix)
    await _publish(client, keys, _snapshot(PnlTracker()))
    argv = ["--redis-url", redis_url, "--instance", key_prefix, "--json"]
    code = await asyncio.to_thread(status_cmd.main, argv)
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["instance"] == key_prefix and data["alive"] is True
    assert len(data["quotes"]) == 3


async def test_status_cli_without_state_exits_not_running(redis_url: str, key_prefix: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = await asyncio.to_thread(status_cmd.main, ["--redis-url", redis_url, "--instance", key_prefix])
    assert code == status_cmd.NOT_RUNNING
    assert "no state published" in capsys.readouterr().out


async def test_inspect_prints_every_key_with_its_meaning_and_value(
    client: aioredis.Redis, redis_url: str, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = RedisKeys(key_prefix)
    publisher = await _publish(client, keys, _snapshot(PnlTracker()))
    publisher.add_risk_event({"kind": "stale_book"})
    await publisher.publish()
    code = await asyncio.to_thread(inspect_cmd.main, ["--redis-url", redis_url, "--instance", key_prefix])
    assert code == 0
    out = capsys.readouterr().out
    assert f"{keys.orders('alpha')}  (hash: Hash: client order id -> JSON of the open order.)" in out
    assert f"{keys.health}  (hash: Hash: status" in out
    assert f"{keys.risk_events}  (stream: Stream of limit events.)" in out
    assert "mm-tob-1 = " in out
    assert "    status = ready" in out


def test_embedded_redis_persists_under_state_dir_and_is_discoverable(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path / "state")
    url = embedded.start()
    try:
        assert discover_url(tmp_path / "state") == url
        assert (tmp_path / "state" / "redis").is_dir()
        pid = embedded.pid
        assert pid is not None
    finally:
        embedded.stop()
    assert discover_url(tmp_path / "state") is None


def test_embedded_redis_left_behind_by_a_killed_daemon_is_replaced(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path / "state")
    url = first.start()
    old_pid = first.pid
    first._server = None  # what a SIGKILLed daemon leaves: the server runs, the files stay
    second = EmbeddedRedis(tmp_path / "state")
    try:
        assert second.start() == url  # same port kept
        assert second.pid != old_pid
        assert not Path(f"/proc/{old_pid}/status").exists() or "zombie" in Path(
            f"/proc/{old_pid}/status").read_text()
    finally:
        second.stop()
