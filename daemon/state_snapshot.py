"""What the running daemon reports about itself, built from its parts: the
:class:`~daemon.state_publisher.StateSnapshot` written to Redis, its status, systemd's status
line, and when READY=1 is due (every book in sync and quotes resting, or a timeout)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from connectors.execution.orders import OrderRecord, OrderState
from daemon.event_path import EventPath
from daemon.state_publisher import FeedHealth, PnlTracker, StateSnapshot
from daemon.supervisor import Supervisor
from daemon.systemd import Notifier
from daemon.venues import VenueRuntime

log = structlog.get_logger(__name__)

_RESTING = (OrderState.OPEN, OrderState.PARTIALLY_FILLED)


class StateReporter:
    """Builds the snapshot the state publisher writes (``snapshot`` is its callback) and, on the
    way, sends READY=1 and systemd status lines."""

    def __init__(
        self,
        event_path: EventPath,
        venues: Mapping[str, VenueRuntime],
        supervisor: Supervisor,
        notifier: Notifier,
        ready_timeout_s: float,
        config_path: Path,
    ) -> None:
        self.event_path = event_path
        self.venues = venues
        self.supervisor = supervisor
        self.notifier = notifier
        self.ready_timeout_s = ready_timeout_s
        self.config_path = config_path
        self.pnl = PnlTracker()  # the daemon sets the config's primary quote at start
        self.unhealthy: dict[str, str] = {}  # task the supervisor gave up on -> its last error
        self.ready = False
        self._status_line = ""
        self._started_mono = time.monotonic()

    def status(self) -> str:
        """``starting``, ``ready``, ``paused``, ``unhealthy`` or ``stopping``."""
        path = self.event_path
        if path.stopping:
            return "stopping"
        if self.unhealthy:
            return "unhealthy"
        if path.paused or (path.risk is not None and path.risk.paused):
            return "paused"
        return "ready" if self.ready else "starting"

    def snapshot(self) -> StateSnapshot:
        """Everything published in one go: feeds, open orders, lines, inventory, PnL, risk, warnings."""
        path = self.event_path
        warnings: list[str] = []
        feeds: dict[str, FeedHealth] = {}
        now = path.clock.time()
        all_in_sync = bool(self.venues)
        for runtime in self.venues.values():
            books = runtime.feed.books if runtime.feed is not None else {}
            if not books:
                all_in_sync = False
            for symbol, book in books.items():
                age = book.health.age(now)
                feeds[f"{runtime.name}:{symbol}"] = FeedHealth(
                    book.health.state.value, None if age == float("inf") else round(age, 3),
                    book.health.resync_count, book.health.reason,
                )
                if not book.health.usable:
                    all_in_sync = False
                    if self.ready:
                        warnings.append(f"book {runtime.name} {symbol} {book.health.state.value}"
                                        f"{': ' + book.health.reason if book.health.reason else ''}")
        orders: dict[str, dict[str, dict[str, Any]]] = {}
        resting = 0
        for runtime in self.venues.values():
            open_orders = runtime.orders.open_orders() if runtime.orders is not None else []
            # an order filled in full but not yet reported terminal is no longer a quote
            orders[runtime.name] = {o.client_order_id: _order_json(o) for o in open_orders if o.remaining > 0}
            resting += sum(1 for o in open_orders if o.state in _RESTING)
        strategy = path.strategy
        snap = StateSnapshot(status=self.status(), paused=path.paused, feeds=feeds, orders=orders,
                             config_path=str(self.config_path))
        if strategy is not None:
            for runtime in self.venues.values():
                if runtime.orders is not None:
                    strategy.on_open_orders(runtime.name, runtime.orders.open_orders())
            state = strategy.state()
            snap.lines = {line_id: line.to_redis() for line_id, line in state.lines.items()}
            snap.inventory = dict(state.inventory.to_redis())
            snap.coefficients = dict(state.coefficients_to_redis())
            snap.rebalance = dict(state.rebalance_to_redis())
            mark = state.references.get(f"{strategy.config.base}/{strategy.config.quotes[0]}")
            if mark is not None:
                self.pnl.on_mark(mark)
            for quote in strategy.config.quotes[1:]:
                rate = strategy.inventory.rate(quote)
                if rate is not None:
                    self.pnl.on_rate(quote, rate)
            pnl = self.pnl.pnl_quote()
            if pnl is not None:
                path.on_pnl(pnl)
            warnings += [f"line {line} cannot quote on {venue}: {why}"
                         for line, venue, why in strategy.unquotable]
            warnings += [f"reference {sym}: {why}" for sym, why in state.reference_reasons.items()]
        snap.pnl = self.pnl.to_dict()
        snap.tasks = {s.name: s.state.value for s in self.supervisor.statuses()}
        warnings += [f"task {name} gave up: {error}" for name, error in self.unhealthy.items()]
        if path.risk is not None:
            snap.risk = path.risk.state()
            if path.risk.paused:
                warnings.append(f"risk paused quoting: {path.risk.reason} (`stackmm resume` to resume)")
        snap.warnings = warnings
        self._check_ready(all_in_sync, resting)
        self._systemd_status(snap, resting)
        return snap

    def _check_ready(self, all_in_sync: bool, resting: int) -> None:
        path = self.event_path
        if self.ready or path.stopping:
            return
        waited = time.monotonic() - self._started_mono
        if all_in_sync and (resting > 0 or path.paused):
            self.ready = True
            log.info("ready", resting_orders=resting)
            self.notifier.ready(f"quoting: {resting} orders on {len(self.venues)} venues")
        elif waited > self.ready_timeout_s:
            # do not let systemd kill a daemon that runs but cannot quote: report it instead
            self.ready = True
            log.warning("ready_without_quotes", books_in_sync=all_in_sync, resting_orders=resting)
            self.notifier.ready("running but not quoting (see `stackmm status`)")

    def _systemd_status(self, snap: StateSnapshot, resting: int) -> None:
        line = (f"{snap.status}: {resting} quotes on {len(self.venues)} venues, "
                f"{self.pnl.fills} fills, {len(snap.warnings)} warnings")
        if line != self._status_line:
            self._status_line = line
            self.notifier.status(line)


def _order_json(order: OrderRecord) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "side": order.side.value,
        "price": str(order.price),
        "size": str(order.remaining),
        "line_id": order.line_id,
        "level": order.level,
        "state": order.state.value,
        "venue_order_id": order.venue_order_id or "",
    }
