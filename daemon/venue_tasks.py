"""The supervised tasks that keep each venue's execution side running: its order manager
(started with the configured start-up policy, replaced by one that adopts our resting orders
after a failure, watched for a dead worker) and its balance snapshots."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

import structlog

from connectors.execution.adapter import VenueAdapter
from connectors.execution.client_ids import instance_prefix
from connectors.execution.order_manager import OrderManager, StartupPolicy
from daemon.balances import fetch_balance_snapshot
from daemon.event_path import EventPath
from daemon.store import Store
from daemon.venues import VENUE_ERRORS, VenueRuntime, ccxt_config_for
from strategies.clock import Clock
from strategies.types import Fill

log = structlog.get_logger(__name__)

BALANCES_INTERVAL_S = 15.0
ORDER_HEALTH_INTERVAL_S = 1.0


class VenueTasks:
    """Order manager and balance tasks of one instance's venues, feeding ``event_path``."""

    def __init__(
        self,
        venues: Mapping[str, VenueRuntime],
        store: Store,
        clock: Clock,
        instance: str,
        event_path: EventPath,
        on_fill: Callable[[Fill], None],
    ) -> None:
        self.venues = venues
        self.store = store
        self.clock = clock
        self.instance = instance
        self.event_path = event_path
        self.on_fill = on_fill

    def order_manager(
        self, runtime: VenueRuntime, startup_policy: StartupPolicy
    ) -> Callable[[], Awaitable[None]]:
        """The venue's order manager task; ``startup_policy`` for our orders a previous run left."""

        async def run_orders() -> None:
            """Start (or, after a failure, restart) the venue's order manager and watch it."""
            restart = runtime.orders is not None
            if runtime.orders is not None:
                # detach, not stop: stop() would cancel the very orders the new manager adopts
                old, runtime.orders = runtime.orders, None
                with contextlib.suppress(*VENUE_ERRORS):
                    await old.detach()
            adapter = VenueAdapter.from_config(
                runtime.name, runtime.config.exchange, ccxt_config_for(runtime.config, runtime.credentials)
            )
            runtime.adapters.append(adapter)
            manager = OrderManager(
                runtime.name, adapter, self.store, self.clock, instance_prefix(self.instance), self.on_fill,
                # after a crash of the manager our live orders are known: adopt them
                startup_policy="adopt" if restart else startup_policy,
                symbols=runtime.config.symbols,
                on_order_event=self.event_path.on_order_event,
            )
            await manager.start()
            runtime.orders = manager
            await self.refresh_balances(runtime)
            if runtime.opening is None and runtime.balances:
                runtime.opening = dict(runtime.balances)
                runtime.opening_ts = self.clock.time()
            runtime.started.set()
            last = self.event_path.last_targets.get(runtime.name)
            if last is not None and not self.event_path.stopping:
                manager.set_targets(last)
            while manager.failure is None:
                # the manager runs its own tasks; it reports a dead one through `failure`
                await asyncio.sleep(ORDER_HEALTH_INTERVAL_S)
            raise manager.failure

        return run_orders

    async def poll_balances(self) -> None:
        """The balances task: every venue's balances every ``BALANCES_INTERVAL_S``."""
        while True:
            await asyncio.sleep(BALANCES_INTERVAL_S)
            for runtime in self.venues.values():
                await self.refresh_balances(runtime)

    async def refresh_balances(self, runtime: VenueRuntime) -> None:
        """Fetch the venue's balances into its runtime, the strategy's inventory and SQLite."""
        if runtime.orders is None:
            return
        try:
            snapshot = await fetch_balance_snapshot(runtime.orders.adapter)
        except VENUE_ERRORS as exc:
            log.warning("balances_unavailable", venue=runtime.name, error=repr(exc))
            return
        raw = snapshot.parts
        runtime.balances = snapshot.totals
        runtime.balances_as_of = snapshot.as_of
        strategy = self.event_path.strategy
        if strategy is not None:
            # venue time: the inventory applies only our fills the snapshot cannot hold
            strategy.on_balances(runtime.name, runtime.balances, snapshot.as_of)
        await self.store.record_balance_snapshot(
            runtime.name, {a: {k: str(v) for k, v in p.items()} for a, p in raw.items()}
        )
