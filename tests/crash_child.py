"""Child process for the crash test: runs an OrderManager against a paper venue hosted by
the test process, places the given targets, prints ``READY <n>`` and waits to be killed.

Usage: python tests/crash_child.py REST_URL WS_URL API_KEY SECRET DB PREFIX TARGETS_JSON
where TARGETS_JSON is ``[[side, price, size, level], ...]`` on BERA/USDT.
"""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal

from connectors.execution.adapter import VenueAdapter
from connectors.execution.order_manager import OrderManager
from connectors.paper import ccxt_config
from daemon.store import Store
from strategies.clock import SystemClock
from strategies.types import Fill, QuoteTarget, Side, TargetSet

SYMBOL = "BERA/USDT"


async def run(argv: list[str]) -> None:
    rest_url, ws_url, api_key, secret, db, prefix, targets_json = argv
    store = await Store.open(db)
    adapter = VenueAdapter.from_config("alpha", "binance", ccxt_config((rest_url, ws_url, api_key, secret)))
    fills_seen: list[Fill] = []

    def on_fill(fill: Fill) -> None:
        fills_seen.append(fill)
        print(f"FILL {fill.trade_id}", flush=True)

    manager = OrderManager(
        "alpha", adapter, store, SystemClock(), prefix, on_fill, symbols=[SYMBOL], reconcile_interval_s=0.5
    )
    await manager.start()
    targets = [
        # size_tolerance 1: a partially filled order stays (the test wants it resting).
        QuoteTarget(
            "alpha", SYMBOL, Side(side), Decimal(price), Decimal(size), "tob", int(level), size_tolerance=1.0
        )
        for side, price, size, level in json.loads(targets_json)
    ]
    await manager.apply(TargetSet("alpha", targets))
    print(f"READY {len(manager.open_orders())}", flush=True)
    await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1:]))
