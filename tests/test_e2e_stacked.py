"""End to end (issue 5): `stackmm run` with `config/bera-usdt.yaml` on the three demo paper venues.

The test reads the venues as any client would (ccxt) and the daemon's state in Redis: TOB
orders one tick ahead of the book where the zone allows, the passive ladder at its spreads
from the reference, fills recorded, and the quotes leaning the way the inventory
coefficient says after inventory is forced long, then short (by moving the inventory target
with a SIGHUP reload, which is how an operator would do it).
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
import redis.asyncio as aioredis

from connectors.paper import ccxt_config
from daemon.redis_keys import RedisKeys
from daemon.status import StatusSnapshot, read_status
from daemon.store import Store
from tests.fixtures.daemon import (
    ROOT,
    DaemonProcess,
    Venue,
    credentials_env,
    new_instance,
    own_orders,
    paper_venues,
    until,
)

pytestmark = pytest.mark.slow

CONFIG = ROOT / "config" / "bera-usdt.yaml"
DEMO_SCENARIO = ROOT / "config" / "paper" / "demo.yaml"
SYMBOL = "BERA/USDT"
TICK = Decimal("0.0001")


@pytest.fixture(scope="module")
def demo_venues(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Venue]]:
    with paper_venues(DEMO_SCENARIO, tmp_path_factory.mktemp("paper") / "paper.log") as found:
        yield found


@pytest.fixture
async def clients(demo_venues: dict[str, Venue]) -> AsyncIterator[dict[str, Any]]:
    made = {
        n: ccxt_async.binance(ccxt_config((v.rest, v.ws, v.key, v.secret))) for n, v in demo_venues.items()
    }
    yield made
    for client in made.values():
        await client.close()


def demo_config(instance: str, venues: dict[str, Venue], target: int | None = None) -> str:
    """config/bera-usdt.yaml as shipped, pointed at this test's ports and instance."""
    text = CONFIG.read_text()
    text = re.sub(r"^instance: .*$", f"instance: {instance}", text, flags=re.M)
    for v in venues.values():
        text = re.sub(rf'(  {v.name}:\n(?:    .*\n)*?)    urls: .*\n',
                      rf'\1    urls: {{rest: "{v.rest}", ws: "{v.ws}"}}\n', text)
    if target is not None:
        text = re.sub(r"^  target: \d+", f"  target: {target}", text, flags=re.M)
    return text


def ladder_level0(snap: StatusSnapshot, venue: str) -> tuple[float, float] | None:
    """(bid distance, ask distance) of the ladder's level 0 from the reference, in bps."""
    ref = snap.coefficients.get(f"reference:{SYMBOL}")
    quotes = {q.client_order_id.split("-")[1]: float(q.price) for q in snap.quotes
              if q.venue == venue and q.line_id == "ladder"}
    if not ref or "ladde0b" not in quotes or "ladde0a" not in quotes:
        return None
    return (ref - quotes["ladde0b"]) / ref * 1e4, (quotes["ladde0a"] - ref) / ref * 1e4


async def test_stacked_strategy_quotes_fills_and_leans_with_inventory(
    demo_venues: dict[str, Venue], clients: dict[str, Any], redis_url: str, tmp_path: Path
) -> None:
    instance = new_instance()
    config = tmp_path / "bera-usdt.yaml"
    config.write_text(demo_config(instance, demo_venues))
    daemon = DaemonProcess(tmp_path, config, instance, redis_url, credentials=credentials_env(demo_venues))
    daemon.start()
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    keys = RedisKeys(instance)
    try:
        await daemon.wait_ready()

        # TOB: our bid one tick above the best bid of the others (or our ask one below theirs)
        async def tob_one_tick_ahead() -> bool:
            for name, client in clients.items():
                book = await client.fetch_order_book(SYMBOL, 5)
                ours = {Decimal(str(o["price"])): o for o in (await own_orders(clients, instance))[name]
                        if "-tob" in o["clientOrderId"]}
                bids = [Decimal(str(p)) for p, _ in book["bids"]]
                asks = [Decimal(str(p)) for p, _ in book["asks"]]
                if len(bids) > 1 and bids[0] in ours and bids[1] == bids[0] - TICK:
                    return True
                if len(asks) > 1 and asks[0] in ours and asks[1] == asks[0] + TICK:
                    return True
            return False

        await until(tob_one_tick_ahead, within_s=30)

        # the passive ladder: level 0 at its spread from the reference (clipped to min/max 10/80
        # bps), three levels further out. A resting order may lag the moving reference (refresh
        # tolerance, minimum order age), so the spread is judged over several snapshots.
        distances: list[float] = []
        for _ in range(10):
            snap = await until(lambda: _snapshot_with_ladder(redis, keys), within_s=30)
            for venue in demo_venues:
                level0 = ladder_level0(snap, venue)
                if level0 is not None:
                    distances += level0
                bids = [float(q.price) for q in snap.quotes
                        if q.venue == venue and q.line_id == "ladder" and q.side == "buy"]
                # at most three levels (one may be off: filled, or being replaced), never two at one price
                assert len(bids) <= 3 and len(set(bids)) == len(bids)
            await asyncio.sleep(0.5)  # spacing the samples in time, not synchronisation
        distances.sort()
        assert len(distances) >= 10
        assert 10 - 1 <= distances[len(distances) // 2] <= 80 + 1

        # fills are recorded (SQLite) on at least two venues
        async def fills_on_two_venues() -> bool:
            store = await Store.open(tmp_path / "state" / f"{instance}.sqlite")
            try:
                return len({f.venue for f in await store.fills()}) >= 2
            finally:
                await store.close()

        await until(fills_on_two_venues, within_s=60, interval=1.0)

        # force inventory long (target far below holdings): bids back off, asks come in
        await _reload(daemon, demo_config(instance, demo_venues, target=19500))
        await until(lambda: _leaning(redis, keys, demo_venues, long=True), within_s=30)
        # and short (target far above): the other way round
        await _reload(daemon, demo_config(instance, demo_venues, target=28500))
        await until(lambda: _leaning(redis, keys, demo_venues, long=False), within_s=30)

        assert daemon.terminate() == 0
        assert all(not o for o in (await own_orders(clients, instance)).values())
    finally:
        await redis.aclose()
        daemon.close()


async def _snapshot_with_ladder(redis: aioredis.Redis, keys: RedisKeys) -> StatusSnapshot | None:
    snap = await read_status(redis, keys)
    venues = {q.venue for q in snap.quotes if q.line_id == "ladder"}
    return snap if len(venues) >= 2 and f"reference:{SYMBOL}" in snap.coefficients else None


async def _reload(daemon: DaemonProcess, text: str) -> None:
    before = sum(1 for e in daemon.events() if e.get("event") == "config_reloaded")
    daemon.config.write_text(text)
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGHUP)

    async def reloaded() -> bool:
        return sum(1 for e in daemon.events() if e.get("event") == "config_reloaded") > before

    await until(reloaded)


async def _leaning(redis: aioredis.Redis, keys: RedisKeys, venues: dict[str, Venue], long: bool) -> bool:
    snap = await read_status(redis, keys)
    coefficient = snap.coefficients.get("inventory", 0.0)
    if (coefficient < 0.3) if long else (coefficient > -0.3):
        return False
    leaning = 0
    for venue in venues:
        level0 = ladder_level0(snap, venue)
        if level0 is None:
            continue
        bid_distance, ask_distance = level0
        # long: the bid (which would grow inventory) is further away than the ask
        if (bid_distance > ask_distance + 5) if long else (ask_distance > bid_distance + 5):
            leaning += 1
        else:
            return False
    return leaning >= 2
