"""The running daemon: wires feeds, strategy, risk, order managers, Redis and SQLite together.

Event path, all in one loop iteration: a feed applies a book update and calls ``on_book`` ->
the strategy returns target sets for the venues whose quotes change -> the risk gate checks
them -> ``OrderManager.set_targets`` (non-blocking; the manager's worker does the I/O).
Timers exist only for the strategy's own ``next_wakeup()``, state publishing (coalesced),
balances, trade persistence and the systemd watchdog.

Lifecycle: ``Daemon.run()`` starts everything under a :class:`Supervisor`, sends READY=1 to
systemd once every book is in sync and quotes rest on a venue, and on SIGTERM/SIGINT stops
quoting, cancels every own order on every venue, confirms, flushes, and returns the exit
code. SIGHUP reloads the YAML; an invalid file is rejected and the old config kept.

Beside it: ``daemon/venues.py`` builds a venue's parts from config (credentials, ccxt config,
feed), ``daemon/risk_gate.py`` the risk check's context and event kinds, ``daemon/volatility.py``
the per-symbol volatility estimate, ``daemon/balances.py`` balance snapshots with venue time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from random import Random
from typing import Any, Literal

import redis.asyncio as aioredis
import structlog

from connectors.execution.adapter import VenueAdapter
from connectors.execution.client_ids import instance_prefix
from connectors.execution.credentials import MissingCredentials
from connectors.execution.order_manager import OrderManager
from connectors.execution.orders import OrderRecord, OrderState
from daemon.balances import fetch_balance_snapshot
from daemon.config_loader import ConfigError, load_config, restart_needed
from daemon.control import Command, CommandRejected, ControlListener
from daemon.embedded_redis import EmbeddedRedis
from daemon.redis_keys import RedisKeys
from daemon.redis_mirror import REDIS_ERRORS, RedisMirror, connect_redis
from daemon.risk_gate import (
    AGGREGATED_MID,
    RELEASING_KINDS,
    WIDENING_KINDS,
    Exposure,
    MarketSnapshot,
    event_dict,
    market_assets,
    market_snapshot,
    pending_exposure,
    risk_config,
    risk_context,
)
from daemon.settings import SecretNotFound, Settings
from daemon.state_publisher import FeedHealth, PnlTracker, StatePublisher, StateSnapshot
from daemon.store import Store
from daemon.supervisor import RestartPolicy, Supervisor
from daemon.systemd import Notifier
from daemon.venues import VENUE_ERRORS, Feed, VenueRuntime, build_feed, ccxt_config_for, resolve_credentials
from daemon.volatility import VolatilityWatch
from strategies.aggregator import Aggregator, CombinedBookSpec
from strategies.book import L2Book
from strategies.clock import Clock, SystemClock
from strategies.config import StrategyConfig
from strategies.reference import reference_price
from strategies.risk import RiskConfig, RiskEngine, RiskEvent
from strategies.stacked import StackedStrategy
from strategies.types import BookHealth, Fill, MarketRules, TargetSet, Trade

__all__ = ["Daemon", "Feed", "VenueRuntime", "resolve_credentials", "risk_config"]

log = structlog.get_logger(__name__)

BALANCES_INTERVAL_S = 15.0
TRADE_PERSIST_INTERVAL_S = 1.0
ORDER_HEALTH_INTERVAL_S = 1.0
BOOK_POLL_INTERVAL_S = 0.1  # a silent book is caught within max_book_age_s + this
EXIT_OK = 0
EXIT_FAILED_STOP = 1  # orders could not be confirmed cancelled within the timeout
EXIT_CONFIG = 2


class Daemon:
    """One trading instance: ``await Daemon(config_path, settings).run()`` returns the exit code."""

    def __init__(
        self,
        config_path: Path,
        settings: Settings,
        notifier: Notifier | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config_path = config_path
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.environ = dict(os.environ if environ is None else environ)
        self.clock: Clock = SystemClock()
        self.config: StrategyConfig | None = None
        self.instance = ""
        self.keys = RedisKeys("unset")
        self.store: Store | None = None
        self.embedded: EmbeddedRedis | None = None
        self.redis: aioredis.Redis | None = None
        self.mirror: RedisMirror | None = None
        self.publisher: StatePublisher | None = None
        self.strategy: StackedStrategy | None = None
        self.risk: RiskEngine | None = None
        self.volatility: VolatilityWatch | None = None
        self._raw_targets: dict[str, TargetSet] = {}  # venue -> the strategy's latest, before limits
        self._rules: dict[tuple[str, str], MarketRules] = {}
        self._assets: dict[str, tuple[str, str]] = {}  # symbol -> (base, quote) of self._rules
        self.aggregator: Aggregator | None = None
        self.venues: dict[str, VenueRuntime] = {}
        self.supervisor = Supervisor(RestartPolicy(), on_give_up=self._on_give_up)
        self.pnl = PnlTracker()  # primary quote set from the config at start
        self.paused = False
        self.ready = False
        self.stopping = False
        self.unhealthy: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._timer_wake = asyncio.Event()
        self._last_targets: dict[str, TargetSet] = {}
        self._handed: dict[str, Exposure] = {}  # venue -> pending_exposure(self._last_targets[venue])
        self._trade_buffer: list[Trade] = []
        self._status_line = ""
        self._started_mono = time.monotonic()
        self._background: set[asyncio.Task[Any]] = set()
        self._reloading = False

    # ------------------------------------------------------------------ entry point

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        try:
            try:
                self.config = await asyncio.to_thread(load_config, self.config_path)
                risk = risk_config(self.config)
            except ConfigError as exc:
                log.error("config_invalid", problems=exc.problems)
                return EXIT_CONFIG
            try:
                await self._start(self.config, risk)
            except (MissingCredentials, SecretNotFound) as exc:
                log.error("credentials_missing", error=str(exc))
                return EXIT_CONFIG
            await self._stop.wait()
            return await self._shutdown()
        finally:
            await self._close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    def _request_stop(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            log.warning("stop_already_requested", signal=sig.name)
            return
        log.info("stop_requested", signal=sig.name)
        self._stop.set()

    def _on_sighup(self) -> None:
        log.info("reload_requested", signal="SIGHUP")
        self._spawn(self.reload(), "reload")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ start-up

    async def _start(self, config: StrategyConfig, risk: RiskConfig) -> None:
        settings = self.settings
        self.instance = settings.instance or config.instance
        self.pnl = PnlTracker(config.quotes[0])
        self.keys = RedisKeys(self.instance)
        structlog.contextvars.bind_contextvars(instance=self.instance)
        log.info("daemon_starting", config=str(self.config_path), pid=os.getpid())
        self.notifier.status("starting")
        state_dir = settings.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        # credentials first: a missing key fails fast, before anything is started
        for name, venue_config in config.venues.items():
            creds = resolve_credentials(name, venue_config, self.environ)
            self.venues[name] = VenueRuntime(name, venue_config, creds)

        self.store = await Store.open(state_dir / f"{self.instance}.sqlite")
        url = settings.redis_url
        if url is None:
            self.embedded = EmbeddedRedis(state_dir)
            url = await asyncio.to_thread(self.embedded.start)
        self.redis = connect_redis(url, timeout_s=3.0)
        self.mirror = RedisMirror(self.redis, self.keys)
        self.publisher = StatePublisher(self.redis, self.keys, self._snapshot, settings.publish_interval_s)
        control = ControlListener(self.redis, self.keys, self._execute, self._audit)
        self.supervisor.add("publisher", self.publisher.run, critical=False)
        self.supervisor.add("control", control.run, critical=False)
        self.supervisor.add("mirror", self.mirror.run, critical=False)
        self.supervisor.add("watchdog", self.notifier.run_watchdog, critical=False, restart_on_return=False)
        await self._audit("daemon", "start", {"config": str(self.config_path), "pid": os.getpid()})

        # order managers first: they load the market rules the strategy needs, and cancel
        # whatever a previous run of this instance left on the venues
        for runtime in self.venues.values():
            self.supervisor.add(f"orders:{runtime.name}", self._order_task(runtime))
        for runtime in self.venues.values():
            if not await self._unless_stopped(runtime.started.wait()):
                return  # stopped (or a venue never came up) before start-up finished
        await self._warm_start(self._build_event_path(config, risk))
        for runtime in self.venues.values():
            runtime.feed = self._build_feed(runtime)
            self.supervisor.add(f"feed:{runtime.name}", runtime.feed.run)
        self.supervisor.add("strategy-timer", self._timer_loop)
        self.supervisor.add("book-watch", self._book_watch_loop)
        self.supervisor.add("balances", self._balances_loop, critical=False)
        self.supervisor.add("trade-store", self._persist_trades_loop)
        self.notifier.status("syncing books")
        log.info("daemon_started", venues=list(self.venues))

    def _build_event_path(self, config: StrategyConfig, risk: RiskConfig) -> StackedStrategy:
        """The parts a book update goes through (``_on_book``), once the order managers have
        loaded the market rules: rules, strategy, risk engine, volatility watch, aggregator.
        No I/O (``bench/strategy_latency.py`` builds the event path with it)."""
        self._rules = self._market_rules()
        self._assets = market_assets(self._rules)
        self.strategy = self._build_strategy(config, self._rules)
        self.risk = RiskEngine(risk, self.clock)
        self.volatility = self._volatility_watch(risk)
        self.aggregator = Aggregator([
            CombinedBookSpec(symbol, [v for v, vc in config.venues.items() if symbol in vc.symbols])
            for symbol in sorted({s for vc in config.venues.values() for s in vc.symbols})
        ])
        if self.mirror is not None:
            # a venue book's update marks the combined views it feeds; each is merged only when
            # the mirror writes it (at most once per interval): a full merge costs ~0.3 ms
            self.mirror.watch_aggregated(self.aggregator.feeds, self.aggregator.combined)
        return self.strategy

    def _volatility_watch(self, risk: RiskConfig) -> VolatilityWatch:
        ticks = {symbol: float(rules.tick) for (_, symbol), rules in sorted(self._rules.items())}
        return VolatilityWatch(risk.volatility, ticks)

    def _market_rules(self) -> dict[tuple[str, str], MarketRules]:
        rules: dict[tuple[str, str], MarketRules] = {}
        for runtime in self.venues.values():
            if runtime.orders is None:
                continue
            for symbol in runtime.config.symbols:
                try:
                    rules[(runtime.name, symbol)] = runtime.orders.rules(symbol)
                except KeyError:
                    log.warning("market_not_listed", venue=runtime.name, symbol=symbol)
        return rules

    async def _unless_stopped(self, awaitable: Any) -> bool:
        """Await ``awaitable`` unless a stop is requested first; True if it completed."""
        waiter = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait([waiter, stop], return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, stop):
            task.cancel()
        return waiter.done() and not waiter.cancelled()

    def _build_strategy(
        self, config: StrategyConfig, rules: dict[tuple[str, str], MarketRules]
    ) -> StackedStrategy:
        strategy = StackedStrategy(config, rules, self.clock, Random())
        for line_id, venue, why in strategy.unquotable:
            log.warning("line_unquotable", line=line_id, venue=venue, reason=why)
        return strategy

    async def _warm_start(self, strategy: StackedStrategy) -> None:
        assert self.store is not None
        since = self.clock.time() - 3600
        trades: list[Trade] = []
        for runtime in self.venues.values():
            for symbol in runtime.config.symbols:
                trades += await self.store.recent_market_trades(runtime.name, symbol, since)
        if trades:
            strategy.warm_start_volume(sorted(trades, key=lambda t: t.ts), since)
        for runtime in self.venues.values():
            if runtime.balances:
                strategy.on_balances(runtime.name, runtime.balances, runtime.balances_as_of)

    def _order_task(self, runtime: VenueRuntime) -> Any:
        async def run_orders() -> None:
            """Start (or, after a failure, restart) the venue's order manager and watch it."""
            assert self.store is not None and self.config is not None
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
                runtime.name, adapter, self.store, self.clock, instance_prefix(self.instance), self._on_fill,
                # after a crash of the manager our live orders are known: adopt them
                startup_policy="adopt" if restart else self.config.execution.startup_policy,
                symbols=runtime.config.symbols,
                on_order_event=self._on_order_event,
            )
            await manager.start()
            runtime.orders = manager
            await self._refresh_balances(runtime)
            if runtime.opening is None and runtime.balances:
                runtime.opening = dict(runtime.balances)
                runtime.opening_ts = self.clock.time()
            runtime.started.set()
            last = self._last_targets.get(runtime.name)
            if last is not None and not self.stopping:
                manager.set_targets(last)
            while manager.failure is None:
                # the manager runs its own tasks; it reports a dead one through `failure`
                await asyncio.sleep(ORDER_HEALTH_INTERVAL_S)
            raise manager.failure

        return run_orders

    def _build_feed(self, runtime: VenueRuntime) -> Feed:
        return build_feed(runtime, self.clock, self._on_book, self._on_trade, self._on_health)

    # ------------------------------------------------------------------ the event path

    def _on_book(self, book: L2Book) -> None:
        if self.mirror is not None:
            self.mirror.mark_dirty(book)
        if self.aggregator is not None:
            for symbol in self.aggregator.update(book):
                self._on_aggregated(symbol)
        if self.strategy is not None:
            self._dispatch(self.strategy.on_book(book))

    def _on_health(self, book: L2Book) -> None:
        log.info("book_health", venue=book.venue, symbol=book.symbol, state=book.health.state.value,
                 reason=book.health.reason)
        if self.risk is not None:
            self._risk_events(self.risk.on_book_health(book.venue, book.symbol, book.health))
        self._on_book(book)  # an unusable book pulls its quotes in the same iteration

    def _on_aggregated(self, symbol: str) -> None:
        """The aggregated book changed: its mid -> volatility estimate -> risk limits (widen, stop,
        resume). The mid feeds nothing else, so it is not worked out without a volatility limit."""
        watch, risk, aggregator = self.volatility, self.risk, self.aggregator
        if watch is None or risk is None or aggregator is None or not watch.enabled:
            return
        mid = reference_price(AGGREGATED_MID, aggregator, symbol, self.clock.time()).value
        if mid is None:
            return
        sigma_bps = watch.on_mid(symbol, mid, self.clock.time())
        if sigma_bps is not None:
            self._risk_events(risk.on_volatility(sigma_bps, symbol))

    def _on_trade(self, trade: Trade) -> None:
        # before the book update this trade caused (the feeds deliver it first)
        if self.volatility is not None:
            self.volatility.on_trade(trade)
        if self.mirror is not None:
            self.mirror.add_trade(trade)
        if self.strategy is not None:
            self.strategy.on_trade(trade)
        self._trade_buffer.append(trade)

    def _on_fill(self, fill: Fill) -> None:
        log.info("fill", venue=fill.venue, symbol=fill.symbol, side=fill.side.value, price=str(fill.price),
                 qty=str(fill.qty), line=fill.line_id, order=fill.client_order_id)
        self.pnl.on_fill(fill)
        runtime = self.venues.get(fill.venue)
        if runtime is not None:
            runtime.on_fill(fill)
        if self.risk is not None:
            self._risk_events(self.risk.on_fill(fill))
        emitted: set[str] = set()
        if self.strategy is not None:
            sets = self.strategy.on_fill(fill)
            emitted = {s.venue for s in sets}
            self._dispatch(sets)
        # the position moved: limits may now bite on venues whose quotes the strategy left as
        # they were, so their latest targets go through the risk check again
        for venue, targets in list(self._raw_targets.items()):
            if venue not in emitted:
                self._apply(targets)
        if self.publisher is not None:
            self.publisher.mark_dirty()

    def _on_order_event(self, order: OrderRecord, event: str) -> None:
        """The order manager placed, cancelled, filled or had rejected one of our orders."""
        line_event = _LINE_EVENTS.get(event)  # fills count through on_fill
        if self.strategy is not None and line_event is not None:
            self.strategy.on_order_event(order.line_id, line_event)
            self._publish_now()

    def _dispatch(self, target_sets: Iterable[TargetSet]) -> None:
        """Strategy output -> risk -> order managers, synchronously."""
        snapshot: MarketSnapshot | None = None  # one per dispatch: nothing it holds can change in it
        for targets in target_sets:
            self._raw_targets[targets.venue] = targets
            if snapshot is None:
                snapshot = self._market_snapshot()
            self._apply(targets, snapshot)
        if snapshot is not None:
            self._timer_wake.set()
            if self.publisher is not None:
                self.publisher.mark_dirty()

    def _apply(self, targets: TargetSet, snapshot: MarketSnapshot | None = None) -> None:
        checked = targets
        if self.risk is not None:
            context = risk_context(snapshot or self._market_snapshot(), self._handed)
            checked, events = self.risk.check(targets, context)
            self._risk_events(events, recheck=False)
        if self.stopping or (self.paused and checked.targets):
            return  # nothing new is placed while paused or stopping
        self._hand_on(checked)
        runtime = self.venues.get(checked.venue)
        if runtime is not None and runtime.orders is not None:
            runtime.orders.set_targets(checked)

    def _hand_on(self, targets: TargetSet) -> None:
        """Record the set handed to its venue's manager (the next risk checks count it)."""
        self._last_targets[targets.venue] = targets
        self._handed[targets.venue] = pending_exposure(targets)

    def _market_snapshot(self) -> MarketSnapshot:
        return market_snapshot(
            self.strategy, self.venues, self.aggregator, self._rules, self._assets, self.clock.time()
        )

    def _risk_events(self, events: list[RiskEvent], recheck: bool = True) -> None:
        """Report limit events; when one starts or stops pulling quotes, re-check every venue."""
        if not events:
            return
        for event in events:
            data = event_dict(event)
            level = log.warning if event.severity != "info" else log.info
            level("risk_event", **data)
            if self.publisher is not None:
                self.publisher.add_risk_event(data)
            self._spawn(self._audit("risk", event.kind, data), "audit-risk")
        if any(e.kind in WIDENING_KINDS for e in events):
            self._apply_spread_factors()
        if recheck and any(e.pulls_quotes or e.kind in RELEASING_KINDS for e in events):
            for targets in list(self._raw_targets.values()):
                self._apply(targets)

    def _apply_spread_factors(self) -> None:
        """The risk engine's spread widening into the strategy (re-dispatching what changes)."""
        strategy, risk = self.strategy, self.risk
        if strategy is None or risk is None:
            return
        for symbol in strategy.symbols:
            self._dispatch(strategy.set_spread_factor(symbol, risk.spread_factor(symbol)))

    def _take_quotes_off(self) -> None:
        """Empty target sets for every venue (the order managers cancel what rests)."""
        now = self.clock.time()
        for name, runtime in self.venues.items():
            empty = TargetSet(name, [], now)
            self._hand_on(empty)
            if runtime.orders is not None:
                runtime.orders.set_targets(empty)

    # ------------------------------------------------------------------ timers

    async def _timer_loop(self) -> None:
        """Run ``strategy.on_timer()`` at ``strategy.next_wakeup()`` (re-planned after each dispatch)."""
        while True:
            strategy = self.strategy
            wake = strategy.next_wakeup() if strategy is not None else None
            self._timer_wake.clear()
            delay = None if wake is None else max(0.0, wake - self.clock.time())
            try:
                await asyncio.wait_for(self._timer_wake.wait(), timeout=delay)
                continue  # something changed: plan again
            except TimeoutError:
                pass
            if self.strategy is not None and not self.paused and not self.stopping:
                self._dispatch(self.strategy.on_timer())

    async def _book_watch_loop(self) -> None:
        """Books that went silent without a health event (``risk.max_book_age_s``) pull their
        quotes within one period of crossing the limit."""
        while True:
            await asyncio.sleep(BOOK_POLL_INTERVAL_S)
            if self.risk is not None:
                self._risk_events(self.risk.poll_books(self._book_health()))

    def _book_health(self) -> dict[tuple[str, str], BookHealth]:
        return {(r.name, s): b.health for r in self.venues.values() if r.feed is not None
                for s, b in r.feed.books.items()}

    async def _balances_loop(self) -> None:
        while True:
            await asyncio.sleep(BALANCES_INTERVAL_S)
            for runtime in self.venues.values():
                await self._refresh_balances(runtime)

    async def _refresh_balances(self, runtime: VenueRuntime) -> None:
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
        if self.strategy is not None:
            # venue time: the inventory applies only our fills the snapshot cannot hold
            self.strategy.on_balances(runtime.name, runtime.balances, snapshot.as_of)
        if self.store is not None:
            await self.store.record_balance_snapshot(
                runtime.name, {a: {k: str(v) for k, v in p.items()} for a, p in raw.items()}
            )

    async def _persist_trades_loop(self) -> None:
        while True:
            await asyncio.sleep(TRADE_PERSIST_INTERVAL_S)
            await self._flush_trades()

    async def _flush_trades(self) -> None:
        if self._trade_buffer and self.store is not None:
            trades, self._trade_buffer = self._trade_buffer, []
            await self.store.append_market_trades(trades)

    # ------------------------------------------------------------------ control

    async def _execute(self, command: Command) -> str:
        if self.stopping:
            raise CommandRejected("the daemon is stopping")
        if command.name == "pause":
            return await self.pause(command.actor)
        if command.name == "resume":
            return await self.resume(command.actor)
        if command.name == "cancel-all":
            cancelled = await self.cancel_all()
            return f"{cancelled} orders cancelled" + ("" if self.paused else "; quoting continues")
        raise CommandRejected(f"unknown command {command.name!r}")

    async def pause(self, actor: str = "daemon") -> str:
        resting = self._resting_count()
        self.paused = True
        if self.strategy is not None:
            self._dispatch(self.strategy.set_paused(True))
        self._take_quotes_off()
        await self.cancel_all()  # confirmed with each venue before we answer
        left = self._resting_count()
        log.info("paused", actor=actor, taken_off=resting, left=left)
        self._publish_now()
        return f"paused; {resting} orders taken off, {left} left"

    def _resting_count(self) -> int:
        return sum(len(r.orders.open_orders()) for r in self.venues.values() if r.orders is not None)

    async def resume(self, actor: str = "daemon") -> str:
        for name in list(self.unhealthy):
            await self.supervisor.restart(name)
            del self.unhealthy[name]
        was_paused, self.paused = self.paused, False
        if self.risk is not None and self.risk.paused:
            was_paused = True
            self.risk.resume()  # its "resumed" event re-checks every venue
        if self.strategy is not None:
            self._dispatch(self.strategy.set_paused(False))
        log.info("resumed", actor=actor)
        self._publish_now()
        return "resumed" if was_paused else "resumed (was not paused)"

    async def cancel_all(self) -> int:
        managers = [r.orders for r in self.venues.values() if r.orders is not None]
        results = await asyncio.gather(*(m.cancel_all() for m in managers), return_exceptions=True)
        total = 0
        for manager, result in zip(managers, results, strict=True):
            if isinstance(result, BaseException):
                log.error("cancel_all_failed", venue=manager.venue, error=repr(result))
            else:
                total += result
        return total

    async def _audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        if self.store is not None:
            await self.store.audit(actor, action, detail)

    def _on_give_up(self, name: str, error: BaseException) -> None:
        """A critical task keeps dying: quotes off, instance unhealthy, until an operator resumes."""
        self.unhealthy[name] = repr(error)
        log.critical("instance_unhealthy", task=name, error=repr(error))
        if self.strategy is not None:
            self.strategy.set_paused(True)
        self._take_quotes_off()
        self._spawn(self.cancel_all(), "cancel-after-give-up")
        self.notifier.status(f"UNHEALTHY: task {name} keeps failing; quotes are off")
        self._publish_now()

    def _publish_now(self) -> None:
        if self.publisher is not None:
            self.publisher.mark_dirty()

    # ------------------------------------------------------------------ SIGHUP

    async def reload(self) -> bool:
        """Reload the YAML. A valid change applies now; an invalid one is logged and ignored."""
        if self._reloading or self.strategy is None or self.config is None:
            return False
        self._reloading = True
        try:
            try:
                new = await asyncio.to_thread(load_config, self.config_path)
                new_risk = risk_config(new)
            except ConfigError as exc:
                log.error("config_reload_rejected", problems=exc.problems, kept="previous config")
                await self._audit("sighup", "reload-rejected", {"problems": exc.problems})
                return False
            why = restart_needed(self.config, new)
            if why:
                log.error("config_reload_rejected", problems=[why], kept="previous config")
                await self._audit("sighup", "reload-rejected", {"problems": [why]})
                return False
            if new.risk != self.config.risk:
                # limits changed: a fresh engine (its PnL peak and day start begin again)
                self.risk = RiskEngine(new_risk, self.clock)
                self.volatility = self._volatility_watch(new_risk)
                log.warning("risk_limits_reloaded")
            self._swap_strategy(new)
            await self._audit("sighup", "reload", {"config": str(self.config_path)})
            log.info("config_reloaded", config=str(self.config_path))
            return True
        finally:
            self._reloading = False

    def _swap_strategy(self, config: StrategyConfig) -> None:
        old = self.strategy
        assert old is not None
        strategy = self._build_strategy(config, self._rules)
        if self.risk is not None:
            for symbol in strategy.symbols:
                strategy.set_spread_factor(symbol, self.risk.spread_factor(symbol))
        latest: dict[str, TargetSet] = {}
        # the position carries on (fills since the last balance poll included)
        strategy.inventory.carry_over(old.inventory)
        for runtime in self.venues.values():
            if runtime.orders is not None:
                strategy.on_open_orders(runtime.name, runtime.orders.open_orders())
        strategy.set_paused(self.paused)
        for runtime in self.venues.values():
            for book in (runtime.feed.books.values() if runtime.feed is not None else []):
                latest.update({s.venue: s for s in strategy.on_book(book)})
        if not self.paused:
            latest.update({s.venue: s for s in strategy.on_timer()})
        self.config = config
        self.strategy = strategy
        now = self.clock.time()
        # a venue the new config no longer quotes on must lose its old quotes
        self._dispatch([latest.get(name, TargetSet(name, [], now)) for name in self.venues])

    # ------------------------------------------------------------------ state for Redis

    def _snapshot(self) -> StateSnapshot:
        warnings: list[str] = []
        feeds: dict[str, FeedHealth] = {}
        now = self.clock.time()
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
        strategy = self.strategy
        snap = StateSnapshot(status=self._status(), paused=self.paused, feeds=feeds, orders=orders,
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
            if pnl is not None and self.risk is not None:
                self._risk_events(self.risk.on_mark(pnl))
            warnings += [f"line {line} cannot quote on {venue}: {why}"
                         for line, venue, why in strategy.unquotable]
            warnings += [f"reference {sym}: {why}" for sym, why in state.reference_reasons.items()]
        snap.pnl = self.pnl.to_dict()
        snap.tasks = {s.name: s.state.value for s in self.supervisor.statuses()}
        warnings += [f"task {name} gave up: {error}" for name, error in self.unhealthy.items()]
        if self.risk is not None:
            snap.risk = self.risk.state()
            if self.risk.paused:
                warnings.append(f"risk paused quoting: {self.risk.reason} (`stackmm resume` to resume)")
        snap.warnings = warnings
        self._check_ready(all_in_sync, resting)
        self._systemd_status(snap, resting)
        return snap

    def _status(self) -> str:
        if self.stopping:
            return "stopping"
        if self.unhealthy:
            return "unhealthy"
        if self.paused or (self.risk is not None and self.risk.paused):
            return "paused"
        return "ready" if self.ready else "starting"

    def _check_ready(self, all_in_sync: bool, resting: int) -> None:
        if self.ready or self.stopping:
            return
        waited = time.monotonic() - self._started_mono
        if all_in_sync and (resting > 0 or self.paused):
            self.ready = True
            log.info("ready", resting_orders=resting)
            self.notifier.ready(f"quoting: {resting} orders on {len(self.venues)} venues")
        elif waited > self.settings.ready_timeout_s:
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

    # ------------------------------------------------------------------ shutdown

    async def _shutdown(self) -> int:
        """Stop quoting, cancel and confirm on every venue, flush, within the configured timeout."""
        self.stopping = True
        self.notifier.stopping("cancelling orders")
        log.info("stopping", timeout_s=self.settings.shutdown_timeout_s)
        code = EXIT_OK
        try:
            async with asyncio.timeout(self.settings.shutdown_timeout_s):
                self._publish_now()
                if self.strategy is not None:
                    self.strategy.set_paused(True)
                self._take_quotes_off()
                managers = [r.orders for r in self.venues.values() if r.orders is not None]
                results = await asyncio.gather(*(m.stop() for m in managers), return_exceptions=True)
                for manager, result in zip(managers, results, strict=True):
                    if isinstance(result, BaseException):
                        log.error("venue_stop_failed", venue=manager.venue, error=repr(result))
                        code = EXIT_FAILED_STOP
                # cancel_all confirmed with the venue (fetch_open_orders); records the manager
                # still holds are bookkeeping (e.g. a fill whose final report is in flight)
                left = {m.venue: [f"{o.client_order_id}:{o.state.value}" for o in m.open_orders()]
                        for m in managers if m.open_orders()}
                if left:
                    log.warning("order_records_not_final", venues=left)
                await self.supervisor.stop(wait_s=2.0)
                await self._flush_trades()
                if self.publisher is not None:
                    await self.publisher.publish()
                if self.mirror is not None:
                    with contextlib.suppress(*REDIS_ERRORS):
                        await self.mirror.flush()
                await self._audit("daemon", "stop", {"exit_code": code})
        except TimeoutError:
            log.error("shutdown_timeout", timeout_s=self.settings.shutdown_timeout_s)
            code = EXIT_FAILED_STOP
        log.info("stopped", exit_code=code)
        return code

    async def _close(self) -> None:
        """Release everything, whatever happened before (idempotent)."""
        await self.supervisor.stop(wait_s=2.0)
        for task in list(self._background):
            task.cancel()
        for runtime in self.venues.values():
            if runtime.feed is not None:
                with contextlib.suppress(*VENUE_ERRORS):
                    await runtime.feed.close()
            for adapter in runtime.adapters:
                with contextlib.suppress(*VENUE_ERRORS):
                    await adapter.close()
            runtime.adapters.clear()
        if self.store is not None:
            await self.store.close()
            self.store = None
        if self.redis is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.redis.aclose()
            self.redis = None
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None




_RESTING = (OrderState.OPEN, OrderState.PARTIALLY_FILLED)
_LINE_EVENTS: dict[str, Literal["placed", "cancelled", "rejected"]] = {
    "placed": "placed", "cancelled": "cancelled", "rejected": "rejected",
}


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
