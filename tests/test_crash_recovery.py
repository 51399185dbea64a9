"""A process killed with SIGKILL while its orders rest: the restart finds them by client id
prefix, cancels or adopts them as configured, catches up fills, and SQLite agrees with
the venue afterwards."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.execution.adapter import VenueAdapter
from connectors.execution.order_manager import OrderManager
from connectors.execution.orders import OrderState
from connectors.paper import PaperExchange, PaperVenueHandle, ccxt_config
from connectors.paper.engine import OrderStatus, OrderType
from daemon.store import Store
from strategies.clock import SystemClock
from strategies.types import Fill, Side

SYMBOL = "BERA/USDT"
PREFIX = "crash"
REPO = Path(__file__).resolve().parents[1]
_STATE = {
    OrderStatus.NEW: OrderState.OPEN,
    OrderStatus.PARTIALLY_FILLED: OrderState.PARTIALLY_FILLED,
    OrderStatus.FILLED: OrderState.FILLED,
    OrderStatus.CANCELED: OrderState.CANCELLED,
}


async def _run_child_until_killed(venue: PaperVenueHandle, db: Path, levels: int) -> list[str]:
    """Start the child, wait for its orders to rest, let a taker fill one of them while the
    child watches, SIGKILL it. Returns the child's FILL lines."""
    tick = venue.engine.spec(SYMBOL).tick
    bids, asks, _ = venue.engine.depth(SYMBOL, 1)
    targets = []
    for level in range(levels):
        targets.append(["buy", str(bids[0][0] - tick * (20 + 5 * level)), "10", level])
        targets.append(["sell", str(asks[0][0] + tick * (20 + 5 * level)), "10", level])
    # Level 0 sits inside the spread on both sides so takers hit our orders first.
    targets[0][1] = str(bids[0][0] + tick)
    targets[1][1] = str(asks[0][0] - tick)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "tests" / "crash_child.py"),
        venue.rest_url,
        venue.ws_url,
        venue.api_key,
        venue.secret,
        str(db),
        PREFIX,
        json.dumps(targets),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert child.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not (line := (await child.stdout.readline()).decode()).startswith("READY"):
                assert line, "child exited before its orders rested"
            assert line.split() == ["READY", str(2 * levels)]
            venue.engine.place("other", SYMBOL, Side.BUY, OrderType.MARKET, Decimal("4"))
            fill_line = (await child.stdout.readline()).decode()  # the child recorded the fill
            assert fill_line.startswith("FILL")
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    return [fill_line]


def _own_open(venue: PaperVenueHandle) -> list[str]:
    return sorted(
        o.client_order_id
        for o in venue.engine.open_orders(venue.account, SYMBOL)
        if o.client_order_id.startswith(PREFIX + "-")
    )


@pytest.fixture
async def restart(
    paper_venue: PaperVenueHandle, tmp_path: Path
) -> AsyncIterator[tuple[Path, list[OrderManager], list[Fill]]]:
    managers: list[OrderManager] = []
    fills: list[Fill] = []
    yield tmp_path / "state" / "stackmm.sqlite", managers, fills
    for manager in managers:
        await manager.adapter.close()


async def _restart(
    venue: PaperVenueHandle, db: Path, policy: str, managers: list[OrderManager], fills: list[Fill]
) -> tuple[OrderManager, Store]:
    store = await Store.open(db)
    adapter = VenueAdapter.from_config("alpha", "binance", ccxt_config(venue))
    manager = OrderManager(
        "alpha",
        adapter,
        store,
        SystemClock(),
        PREFIX,
        fills.append,
        startup_policy=policy,  # type: ignore[arg-type]
        symbols=[SYMBOL],
    )
    managers.append(manager)
    await manager.start()
    return manager, store


async def _assert_sqlite_agrees_with_venue(store: Store, venue: PaperVenueHandle) -> None:
    for rec in await store.orders("alpha"):
        if rec.state is OrderState.REJECTED:
            continue
        truth = venue.engine.get_order(venue.account, SYMBOL, client_order_id=rec.client_order_id)
        assert _STATE[truth.status] is rec.state, rec.client_order_id
        assert truth.filled == rec.filled, rec.client_order_id
    venue_trades = sorted(str(e.trade_id) for e in venue.engine.my_trades(venue.account, SYMBOL))
    assert sorted(f.trade_id for f in await store.fills("alpha", SYMBOL)) == venue_trades


@pytest.mark.slow
async def test_after_sigkill_a_restart_with_policy_cancel_takes_the_leftovers_off(
    paper_exchange: PaperExchange,
    paper_venue: PaperVenueHandle,
    restart: tuple[Path, list[OrderManager], list[Fill]],
) -> None:
    paper_exchange.pause_market()
    db, managers, fills = restart
    await _run_child_until_killed(paper_venue, db, levels=3)
    leftovers = _own_open(paper_venue)
    assert len(leftovers) == 6  # level 0's ask is partially filled and still rests
    # While nobody runs, our level 0 bid is partially filled: the restart must catch it up.
    [(_, trades)] = [paper_venue.engine.place("other", SYMBOL, Side.SELL, OrderType.MARKET, Decimal("3"))]
    assert [e.maker_order.client_order_id.startswith(PREFIX) for e in trades] == [True]

    manager, store = await _restart(paper_venue, db, "cancel", managers, fills)
    try:
        assert manager.stats.leftovers_cancelled == 6
        assert len(fills) == 1  # the fill that happened while down reached on_fill once
        assert _own_open(paper_venue) == []
        assert manager.open_orders() == []
        assert await store.live_orders("alpha") == []
        await _assert_sqlite_agrees_with_venue(store, paper_venue)
        await manager.stop()
    finally:
        await store.close()


@pytest.mark.slow
async def test_after_sigkill_a_restart_with_policy_adopt_keeps_the_leftovers(
    paper_exchange: PaperExchange,
    paper_venue: PaperVenueHandle,
    restart: tuple[Path, list[OrderManager], list[Fill]],
) -> None:
    paper_exchange.pause_market()
    db, managers, fills = restart
    await _run_child_until_killed(paper_venue, db, levels=2)
    leftovers = _own_open(paper_venue)
    assert len(leftovers) == 4

    manager, store = await _restart(paper_venue, db, "adopt", managers, fills)
    try:
        assert manager.stats.adopted == 4
        assert OrderState.PARTIALLY_FILLED in {o.state for o in manager.open_orders()}
        assert _own_open(paper_venue) == leftovers
        assert sorted(o.client_order_id for o in manager.open_orders()) == leftovers
        live = await store.live_orders("alpha")
        assert sorted(o.client_order_id for o in live) == leftovers
        assert {o.line_id for o in live} == {"tob"}  # slots recovered from SQLite, not guessed
        await _assert_sqlite_agrees_with_venue(store, paper_venue)
        await manager.stop()
        assert _own_open(paper_venue) == []
        await _assert_sqlite_agrees_with_venue(store, paper_venue)
    finally:
        await store.close()
