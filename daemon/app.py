"""The running daemon: wires feeds, the event path, order managers, Redis and SQLite together.

Lifecycle: ``Daemon.run()`` starts everything under a :class:`Supervisor`, sends READY=1 to
systemd once every book is in sync and quotes rest on a venue, and on SIGTERM/SIGINT stops
quoting, cancels every own order on every venue, confirms, flushes, and returns the exit
code. SIGHUP reloads the YAML; an invalid file is rejected and the old config kept. Operator
commands (pause, resume, cancel-all) arrive through Redis and are written to the audit log.
Timers exist only for the strategy's own ``next_wakeup()``, silent books, balances, trade
persistence, state publishing (coalesced) and the systemd watchdog.

Its parts: ``daemon/event_path.py`` the synchronous path a book update takes (strategy, risk
check, hand-off to the order managers), ``daemon/timers.py`` that path's timed inputs,
``daemon/venue_tasks.py`` each venue's order manager and balance tasks,
``daemon/state_snapshot.py`` the state published to Redis and the READY decision,
``daemon/venues.py`` a venue's parts built from config.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import structlog

from connectors.execution.credentials import MissingCredentials
from daemon.config_loader import ConfigError, load_config, restart_needed
from daemon.control import Command, CommandRejected, ControlListener
from daemon.embedded_redis import EmbeddedRedis
from daemon.event_path import EventPath
from daemon.redis_keys import RedisKeys
from daemon.redis_mirror import REDIS_ERRORS, RedisMirror, connect_redis
from daemon.risk_gate import risk_config
from daemon.settings import SecretNotFound, Settings
from daemon.state_publisher import PnlTracker, StatePublisher
from daemon.state_snapshot import StateReporter
from daemon.store import Store
from daemon.supervisor import RestartPolicy, Supervisor
from daemon.systemd import Notifier
from daemon.timers import StrategyTimer, watch_books
from daemon.venue_tasks import VenueTasks
from daemon.venues import VENUE_ERRORS, Feed, VenueRuntime, build_feed, resolve_credentials
from strategies.book import ACCELERATED as BOOK_SIDE_COMPILED
from strategies.book import L2Book
from strategies.clock import Clock, SystemClock
from strategies.config import StrategyConfig
from strategies.risk import RiskConfig
from strategies.stacked import StackedStrategy
from strategies.types import Fill, Trade

__all__ = ["Daemon", "Feed", "VenueRuntime", "resolve_credentials", "risk_config"]

log = structlog.get_logger(__name__)

TRADE_PERSIST_INTERVAL_S = 1.0
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
        self.venues: dict[str, VenueRuntime] = {}
        self.supervisor = Supervisor(RestartPolicy(), on_give_up=self._on_give_up)
        self.event_path = EventPath(
            self.clock, self.venues, on_dispatch=self._on_dispatch, on_state_change=self._publish_now,
            on_risk_event=self._on_risk_event,
        )
        self.strategy_timer = StrategyTimer(self.event_path, self.clock)
        self.reporter = StateReporter(
            self.event_path, self.venues, self.supervisor, self.notifier, settings.ready_timeout_s,
            config_path,
        )
        self._stop = asyncio.Event()
        self._trade_buffer: list[Trade] = []
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
        self.reporter.pnl = PnlTracker(config.quotes[0])
        self.keys = RedisKeys(self.instance)
        structlog.contextvars.bind_contextvars(instance=self.instance)
        log.info("daemon_starting", config=str(self.config_path), pid=os.getpid())
        if not BOOK_SIDE_COMPILED:
            # it still runs, but each depth update costs ~3x: say so where an operator looks
            log.warning("book_side_not_compiled", hint="reinstall with a C compiler: make")
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
        self.mirror = mirror = RedisMirror(self.redis, self.keys)
        self.publisher = StatePublisher(
            self.redis, self.keys, self.reporter.snapshot, settings.publish_interval_s
        )
        control = ControlListener(self.redis, self.keys, self._execute, self._audit)
        self.supervisor.add("publisher", self.publisher.run, critical=False)
        self.supervisor.add("control", control.run, critical=False)
        self.supervisor.add("mirror", mirror.run, critical=False)
        self.supervisor.add("watchdog", self.notifier.run_watchdog, critical=False, restart_on_return=False)
        await self._audit("daemon", "start", {"config": str(self.config_path), "pid": os.getpid()})

        # order managers first: they load the market rules the strategy needs, and cancel
        # whatever a previous run of this instance left on the venues
        venue_tasks = VenueTasks(
            self.venues, self.store, self.clock, self.instance, self.event_path, self._on_fill
        )
        for runtime in self.venues.values():
            orders = venue_tasks.order_manager(runtime, config.execution.startup_policy)
            self.supervisor.add(f"orders:{runtime.name}", orders)
        for runtime in self.venues.values():
            if not await self._unless_stopped(runtime.started.wait()):
                return  # stopped (or a venue never came up) before start-up finished
        strategy = self.event_path.build(config, risk)
        aggregator = self.event_path.aggregator
        assert aggregator is not None
        # a venue book's update marks the combined views it feeds; each is merged only when
        # the mirror writes it (at most once per interval): a full merge costs ~0.3 ms
        mirror.watch_aggregated(aggregator.feeds, aggregator.combined)
        await self._warm_start(strategy)
        for runtime in self.venues.values():
            runtime.feed = self._build_feed(runtime)
            self.supervisor.add(f"feed:{runtime.name}", runtime.feed.run)
        self.supervisor.add("strategy-timer", self.strategy_timer.run)
        self.supervisor.add("book-watch", functools.partial(watch_books, self.event_path))
        self.supervisor.add("balances", venue_tasks.poll_balances, critical=False)
        self.supervisor.add("trade-store", self._persist_trades_loop)
        self.notifier.status("syncing books")
        log.info("daemon_started", venues=list(self.venues))

    async def _unless_stopped(self, awaitable: Any) -> bool:
        """Await ``awaitable`` unless a stop is requested first; True if it completed."""
        waiter = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait([waiter, stop], return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, stop):
            task.cancel()
        return waiter.done() and not waiter.cancelled()

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

    def _build_feed(self, runtime: VenueRuntime) -> Feed:
        return build_feed(runtime, self.clock, self._on_book, self._on_trade, self._on_health)

    # ------------------------------------------------------------------ feed and fill callbacks

    def _on_book(self, book: L2Book) -> None:
        if self.mirror is not None:
            self.mirror.mark_dirty(book)
        self.event_path.on_book(book)

    def _on_health(self, book: L2Book) -> None:
        if self.mirror is not None:
            self.mirror.mark_dirty(book)
        self.event_path.on_health(book)

    def _on_trade(self, trade: Trade) -> None:
        if self.mirror is not None:
            self.mirror.add_trade(trade)
        self.event_path.on_trade(trade)
        self._trade_buffer.append(trade)

    def _on_fill(self, fill: Fill) -> None:
        log.info("fill", venue=fill.venue, symbol=fill.symbol, side=fill.side.value, price=str(fill.price),
                 qty=str(fill.qty), line=fill.line_id, order=fill.client_order_id)
        self.reporter.pnl.on_fill(fill)
        self.event_path.on_fill(fill)
        self._publish_now()

    def _on_dispatch(self) -> None:
        self.strategy_timer.wake()
        self._publish_now()

    def _on_risk_event(self, data: dict[str, Any]) -> None:
        if self.publisher is not None:
            self.publisher.add_risk_event(data)
        self._spawn(self._audit("risk", data["kind"], data), "audit-risk")

    def _publish_now(self) -> None:
        if self.publisher is not None:
            self.publisher.mark_dirty()

    # ------------------------------------------------------------------ market trades to SQLite

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
        if self.event_path.stopping:
            raise CommandRejected("the daemon is stopping")
        if command.name == "pause":
            return await self.pause(command.actor)
        if command.name == "resume":
            return await self.resume(command.actor)
        if command.name == "cancel-all":
            cancelled = await self.cancel_all()
            return f"{cancelled} orders cancelled" + ("" if self.event_path.paused else "; quoting continues")
        raise CommandRejected(f"unknown command {command.name!r}")

    async def pause(self, actor: str = "daemon") -> str:
        """Take every quote off and keep them off until ``resume``; the answer counts what was taken off."""
        resting = self._resting_count()
        self.event_path.pause()
        await self.cancel_all()  # confirmed with each venue before we answer
        left = self._resting_count()
        log.info("paused", actor=actor, taken_off=resting, left=left)
        self._publish_now()
        return f"paused; {resting} orders taken off, {left} left"

    def _resting_count(self) -> int:
        return sum(len(r.orders.open_orders()) for r in self.venues.values() if r.orders is not None)

    async def resume(self, actor: str = "daemon") -> str:
        """Quote again after a pause, a risk pause or tasks given up on (restarted first)."""
        for name in list(self.reporter.unhealthy):
            await self.supervisor.restart(name)
            del self.reporter.unhealthy[name]
        was_paused = self.event_path.resume()
        log.info("resumed", actor=actor)
        self._publish_now()
        return "resumed" if was_paused else "resumed (was not paused)"

    async def cancel_all(self) -> int:
        """Cancel every own order on every venue (confirmed); returns how many were cancelled."""
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
        self.reporter.unhealthy[name] = repr(error)
        log.critical("instance_unhealthy", task=name, error=repr(error))
        self.event_path.stop_quoting()
        self._spawn(self.cancel_all(), "cancel-after-give-up")
        self.notifier.status(f"UNHEALTHY: task {name} keeps failing; quotes are off")
        self._publish_now()

    # ------------------------------------------------------------------ SIGHUP

    async def reload(self) -> bool:
        """Reload the YAML. A valid change applies now; an invalid one is logged and ignored."""
        if self._reloading or self.event_path.strategy is None or self.config is None:
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
                self.event_path.replace_risk(new_risk)
                log.warning("risk_limits_reloaded")
            self.event_path.replace_strategy(new)
            self.config = new
            await self._audit("sighup", "reload", {"config": str(self.config_path)})
            log.info("config_reloaded", config=str(self.config_path))
            return True
        finally:
            self._reloading = False

    # ------------------------------------------------------------------ shutdown

    async def _shutdown(self) -> int:
        """Stop quoting, cancel and confirm on every venue, flush, within the configured timeout."""
        self.event_path.stopping = True
        self.notifier.stopping("cancelling orders")
        log.info("stopping", timeout_s=self.settings.shutdown_timeout_s)
        code = EXIT_OK
        try:
            async with asyncio.timeout(self.settings.shutdown_timeout_s):
                self._publish_now()
                self.event_path.stop_quoting()
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
