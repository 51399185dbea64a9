"""The daemon's recovery paths, run in-process against the in-process paper venue and real Redis.

- an order manager that dies is replaced by one that *adopts* the orders resting on the venue
  (the old one is detached, not stopped: stopping would cancel what is to be adopted);
- a critical task that keeps dying (here a feed, through a fault the test injects) is given
  up on: every quote comes off the venues and the instance reports itself unhealthy.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from connectors.execution.client_ids import instance_prefix, slot_tag
from connectors.paper import PaperExchange
from connectors.paper.engine import OrderType
from daemon.app import Daemon, Feed, VenueRuntime
from daemon.redis_keys import RedisKeys
from daemon.status import read_status
from strategies.book import L2Book
from strategies.types import Side
from tests.fixtures.daemon import SYMBOL, in_process_daemon, new_instance, own_open_ids, running, until


class FaultyFeed:
    """A real feed that raises as soon as ``fault`` is set, and on every restart after that."""

    def __init__(self, feed: Feed, fault: asyncio.Event) -> None:
        self.feed = feed
        self.fault = fault
        self.books: dict[str, L2Book] = feed.books
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        if self.fault.is_set():
            raise RuntimeError("injected feed fault")
        feeding = asyncio.ensure_future(self.feed.run())
        broken = asyncio.ensure_future(self.fault.wait())
        try:
            await asyncio.wait([feeding, broken], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (feeding, broken):
                task.cancel()
            await asyncio.gather(feeding, broken, return_exceptions=True)
        raise RuntimeError("injected feed fault")

    async def close(self) -> None:
        await self.feed.close()


class FaultyFeedDaemon(Daemon):
    """The real daemon whose feed on ``faulty_venue`` breaks when the test sets ``fault``."""

    faulty_venue = "alpha"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fault = asyncio.Event()

    def _build_feed(self, runtime: VenueRuntime) -> Feed:
        feed = super()._build_feed(runtime)
        return FaultyFeed(feed, self.fault) if runtime.name == self.faulty_venue else feed


async def test_a_dead_order_manager_is_replaced_by_one_that_adopts_the_resting_orders(
    tmp_path: Path, paper_exchange: PaperExchange, redis_url: str
) -> None:
    paper = paper_exchange
    daemon, notifier = in_process_daemon(Daemon, tmp_path, paper_exchange, redis_url)
    async with running(daemon):
        await notifier.wait_for(lambda n: n.get("READY") == "1")
        # a still market: the strategy's targets hold, so every resting order stays wanted
        paper.pause_market()

        async def settled() -> dict[str, set[str]] | None:
            runtime = daemon.venues["alpha"]
            ids = own_open_ids(paper, daemon.instance)
            known = {o.client_order_id for o in runtime.orders.open_orders()} if runtime.orders else set()
            return ids if ids["alpha"] and ids["alpha"] == known else None

        resting = await until(settled)
        old = daemon.venues["alpha"].orders
        assert old is not None
        # what the manager's task-done callback records when one of its tasks dies
        old.failure = RuntimeError("order manager task died")

        async def replaced() -> bool:
            runtime = daemon.venues["alpha"]
            return runtime.orders not in (None, old) and runtime.started.is_set()

        await until(replaced)
        new = daemon.venues["alpha"].orders
        assert new is not None and new.startup_policy == "adopt"
        # the passive ladder's targets cannot move in a still market (a TOB quote may step
        # around our own orders and be replaced): its orders must have been adopted as they are
        passive = {cid for cid in resting["alpha"] if "-pas" in cid}
        assert len(passive) == 4
        assert passive <= {o.client_order_id for o in new.open_orders()}
        assert passive <= own_open_ids(paper, daemon.instance)["alpha"]  # never cancelled
        paper.resume_market()


async def test_a_task_that_keeps_dying_takes_quotes_off_and_marks_the_instance_unhealthy(
    tmp_path: Path, paper_exchange: PaperExchange, redis_url: str
) -> None:
    paper = paper_exchange
    daemon, notifier = in_process_daemon(FaultyFeedDaemon, tmp_path, paper_exchange, redis_url)
    assert isinstance(daemon, FaultyFeedDaemon)
    async with running(daemon) as task:
        await notifier.wait_for(lambda n: n.get("READY") == "1")
        assert any(own_open_ids(paper, daemon.instance).values())

        daemon.fault.set()
        await notifier.wait_for(lambda n: n.get("STATUS", "").startswith("UNHEALTHY: task feed:alpha"))
        feed = daemon.venues["alpha"].feed
        assert isinstance(feed, FaultyFeed) and feed.runs == 4  # the first run and 3 restarts

        async def quotes_off() -> bool:
            return not any(own_open_ids(paper, daemon.instance).values())

        await until(quotes_off)  # on every venue, not only the broken feed's
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            async def reported() -> Any:
                snap = await read_status(client, RedisKeys(daemon.instance))
                return snap if snap.status == "unhealthy" else None

            snap = await until(reported)
        finally:
            await client.aclose()
        assert any("feed:alpha" in w and "injected feed fault" in w for w in snap.warnings)
        assert not task.done()  # still running, reporting, waiting for an operator


@pytest.mark.parametrize("policy", ["cancel", "adopt"])
async def test_orders_left_by_a_previous_run_are_cancelled_or_adopted_as_configured(
    policy: str, tmp_path: Path, paper_exchange: PaperExchange, redis_url: str
) -> None:
    paper = paper_exchange
    paper.pause_market()
    instance = new_instance()
    handle = paper.venues["alpha"]
    best_bid, _ = handle.engine.best_bid_ask(SYMBOL)
    assert best_bid is not None
    # a previous run's bid, far below the market so nothing fills it while the daemon starts
    leftover = f"{instance_prefix(instance)}-{slot_tag('old', Side.BUY, 0)}-1"
    handle.engine.place(
        handle.account, SYMBOL, Side.BUY, OrderType.LIMIT, Decimal(10),
        (best_bid * Decimal("0.9")).quantize(Decimal("0.0001")), client_order_id=leftover,
    )  # fmt: skip
    daemon, notifier = in_process_daemon(
        Daemon, tmp_path, paper_exchange, redis_url, instance=instance,
        extra=f"execution:\n  startup_policy: {policy}\n",
    )  # fmt: skip
    async with running(daemon):
        await notifier.wait_for(lambda n: n.get("READY") == "1")
        manager = daemon.venues["alpha"].orders
        assert manager is not None and manager.startup_policy == policy
        if policy == "adopt":
            assert (manager.stats.adopted, manager.stats.leftovers_cancelled) == (1, 0)
        else:
            assert (manager.stats.adopted, manager.stats.leftovers_cancelled) == (0, 1)
            resting = {o.client_order_id for o in handle.engine.open_orders(handle.account, SYMBOL)}
            assert leftover not in resting
    paper.resume_market()
