"""Line statistics come from the order manager's events, not from sampling open orders.

Every order the venue acknowledged counts once as ``placed`` on its line, every cancel once as
``cancelled``, however short the order's life: here the state is published only at start and
at shutdown, so an order that lived between two publishes would be invisible to sampling.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import aiosqlite
import redis.asyncio as aioredis

from connectors.paper import PaperExchange
from daemon.app import Daemon
from daemon.redis_keys import RedisKeys
from tests.fixtures.daemon import in_process_daemon, own_open_ids, running, until


async def test_placed_and_cancelled_counters_match_the_order_log_exactly(
    tmp_path: Path, paper_exchange: PaperExchange, redis_url: str
) -> None:
    daemon, _ = in_process_daemon(Daemon, tmp_path, paper_exchange, redis_url, publish_interval_s=60.0)
    async with running(daemon) as task:

        async def quoting() -> bool:
            if not daemon.instance:
                return False
            return all(len(ids) >= 4 for ids in own_open_ids(paper_exchange, daemon.instance).values())

        await until(quoting)
        # every order of this run is cancelled at stop: "cancelled" is then large and exact too
    assert task.result() == 0

    async with aiosqlite.connect(tmp_path / "state" / f"{daemon.instance}.sqlite") as db:
        rows = list(await db.execute_fetchall("SELECT line_id, state, venue_order_id FROM orders"))
    placed = Counter(line for line, _, venue_id in rows if venue_id)
    cancelled = Counter(line for line, state, _ in rows if state == "cancelled")
    assert placed["tob"] >= 4 and placed["pas"] >= 8 and cancelled["pas"] >= 8

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = RedisKeys(daemon.instance)
        for line in ("tob", "pas"):
            state = await client.hgetall(keys.line(line))  # type: ignore[misc]
            assert (int(state["placed"]), int(state["cancelled"])) == (placed[line], cancelled[line]), line
    finally:
        await client.aclose()
