"""The event path: book, trade and fill events -> stacked strategy -> risk check -> the venues'
order managers, synchronously, inside the feed's or the order manager's callback.

A book update that changes a quote reaches ``OrderManager.set_targets`` (which only queues: the
manager's worker talks to the venue) before the callback returns. No I/O and no awaiting here:
what the daemon does around the path (publishing state, waking the strategy timer, auditing
risk events) it learns through the callbacks given to :class:`EventPath`.
``bench/strategy_latency.py`` drives this class directly and measures it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from random import Random
from typing import Any, Literal

import structlog

from connectors.execution.orders import OrderRecord
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
    risk_context,
)
from daemon.venues import VenueRuntime
from daemon.volatility import VolatilityWatch
from strategies.aggregator import Aggregator, CombinedBookSpec
from strategies.book import L2Book
from strategies.clock import Clock
from strategies.config import StrategyConfig
from strategies.reference import reference_price
from strategies.risk import RiskConfig, RiskEngine, RiskEvent
from strategies.stacked import StackedStrategy
from strategies.types import BookHealth, Fill, MarketRules, TargetSet, Trade

log = structlog.get_logger(__name__)

_LINE_EVENTS: dict[str, Literal["placed", "cancelled", "rejected"]] = {
    "placed": "placed", "cancelled": "cancelled", "rejected": "rejected",
}


def _nothing() -> None:
    return None


def _ignore(data: dict[str, Any]) -> None:
    return None


class EventPath:
    """The strategy, risk engine, aggregator and volatility watch between the feeds and the
    venues' order managers, and what was last handed to each manager.

    Its parts are built by :meth:`build` once the order managers have loaded the market rules.
    While ``paused`` (:meth:`pause` to :meth:`resume`) only empty target sets go out; once the
    daemon sets ``stopping``, nothing does.
    """

    def __init__(
        self,
        clock: Clock,
        venues: Mapping[str, VenueRuntime],
        *,
        on_dispatch: Callable[[], None] = _nothing,
        on_state_change: Callable[[], None] = _nothing,
        on_risk_event: Callable[[dict[str, Any]], None] = _ignore,
    ) -> None:
        """``on_dispatch``: the strategy emitted target sets (its next wake-up may have moved);
        ``on_state_change``: published state changed; ``on_risk_event``: a risk event as
        ``event_dict`` gives it, already logged."""
        self.clock = clock
        self.venues = venues
        self.paused = False
        self.stopping = False
        self.rules: dict[tuple[str, str], MarketRules] = {}  # (venue, symbol) -> rules the parts use
        self._assets: dict[str, tuple[str, str]] = {}  # symbol -> (base, quote) of self.rules
        self.strategy: StackedStrategy | None = None
        self.risk: RiskEngine | None = None
        self.volatility: VolatilityWatch | None = None
        self.aggregator: Aggregator | None = None
        self.raw_targets: dict[str, TargetSet] = {}  # venue -> the strategy's latest, before limits
        self.last_targets: dict[str, TargetSet] = {}  # venue -> the set last handed to its manager
        self._handed: dict[str, Exposure] = {}  # venue -> pending_exposure(self.last_targets[venue])
        self._on_dispatch = on_dispatch
        self._on_state_change = on_state_change
        self._on_risk_event = on_risk_event

    # ------------------------------------------------------------------ parts

    def build(self, config: StrategyConfig, risk: RiskConfig) -> StackedStrategy:
        """Build the parts from the rules the venues' order managers loaded: rules, strategy,
        risk engine, volatility watch, aggregator. Returns the strategy."""
        self.rules = self._market_rules()
        self._assets = market_assets(self.rules)
        self.strategy = self._build_strategy(config)
        self.risk = RiskEngine(risk, self.clock)
        self.volatility = self._volatility_watch(risk)
        self.aggregator = Aggregator([
            CombinedBookSpec(symbol, [v for v, vc in config.venues.items() if symbol in vc.symbols])
            for symbol in sorted({s for vc in config.venues.values() for s in vc.symbols})
        ])
        return self.strategy

    def replace_risk(self, risk: RiskConfig) -> None:
        """New limits: a fresh engine (its PnL peak and day start begin again)."""
        self.risk = RiskEngine(risk, self.clock)
        self.volatility = self._volatility_watch(risk)

    def replace_strategy(self, config: StrategyConfig) -> None:
        """A strategy built from ``config`` takes over the position, open orders, pause and books
        of the running one; every venue is handed its new targets (empty if no longer quoted)."""
        old = self.strategy
        assert old is not None
        strategy = self._build_strategy(config)
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
        self.strategy = strategy
        now = self.clock.time()
        # a venue the new config no longer quotes on must lose its old quotes
        self._dispatch([latest.get(name, TargetSet(name, [], now)) for name in self.venues])

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

    def _build_strategy(self, config: StrategyConfig) -> StackedStrategy:
        strategy = StackedStrategy(config, self.rules, self.clock, Random())
        for line_id, venue, why in strategy.unquotable:
            log.warning("line_unquotable", line=line_id, venue=venue, reason=why)
        return strategy

    def _volatility_watch(self, risk: RiskConfig) -> VolatilityWatch:
        ticks = {symbol: float(rules.tick) for (_, symbol), rules in sorted(self.rules.items())}
        return VolatilityWatch(risk.volatility, ticks)

    # ------------------------------------------------------------------ events in

    def on_book(self, book: L2Book) -> None:
        """A book changed (a feed's ``on_book``): aggregated views, then the strategy."""
        if self.aggregator is not None:
            for symbol in self.aggregator.update(book):
                self._on_aggregated(symbol)
        if self.strategy is not None:
            self._dispatch(self.strategy.on_book(book))

    def on_health(self, book: L2Book) -> None:
        """A book's health changed (a feed's ``on_health``): risk limits, then as ``on_book``."""
        log.info("book_health", venue=book.venue, symbol=book.symbol, state=book.health.state.value,
                 reason=book.health.reason)
        if self.risk is not None:
            self._risk_events(self.risk.on_book_health(book.venue, book.symbol, book.health))
        self.on_book(book)  # an unusable book pulls its quotes in the same iteration

    def _on_aggregated(self, symbol: str) -> None:
        """The aggregated book changed: its mid -> volatility estimate -> risk limits (widen, stop,
        resume). The mid feeds nothing else, so it is not worked out without a volatility limit."""
        watch, risk, aggregator = self.volatility, self.risk, self.aggregator
        if watch is None or risk is None or aggregator is None or not watch.enabled:
            return
        now = self.clock.time()
        mid = reference_price(AGGREGATED_MID, aggregator, symbol, now).value
        if mid is None:
            return
        sigma_bps = watch.on_mid(symbol, mid, now)
        if sigma_bps is not None:
            self._risk_events(risk.on_volatility(sigma_bps, symbol))

    def on_trade(self, trade: Trade) -> None:
        """A public trade, before the book update it caused (the feeds deliver it first)."""
        if self.volatility is not None:
            self.volatility.on_trade(trade)
        if self.strategy is not None:
            self.strategy.on_trade(trade)

    def on_fill(self, fill: Fill) -> None:
        """One of our orders filled: positions, risk limits, strategy."""
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
        for venue, targets in list(self.raw_targets.items()):
            if venue not in emitted:
                self._apply(targets)

    def on_order_event(self, order: OrderRecord, event: str) -> None:
        """The order manager placed, cancelled, filled or had rejected one of our orders."""
        line_event = _LINE_EVENTS.get(event)  # fills count through on_fill
        if self.strategy is not None and line_event is not None:
            self.strategy.on_order_event(order.line_id, line_event)
            self._on_state_change()

    def on_timer(self) -> None:
        """The strategy's wake-up time came (``next_wakeup``): its timed re-quotes, unless held."""
        if self.strategy is not None and not self.paused and not self.stopping:
            self._dispatch(self.strategy.on_timer())

    def next_wakeup(self) -> float | None:
        """When ``on_timer`` is next due (clock time), None for never."""
        return self.strategy.next_wakeup() if self.strategy is not None else None

    def poll_books(self) -> None:
        """Books that went silent without a health event (``risk.max_book_age_s``) pull their quotes."""
        if self.risk is not None:
            self._risk_events(self.risk.poll_books(self._book_health()))

    def on_pnl(self, pnl: float) -> None:
        """The instance's PnL in the primary quote, for the PnL limits."""
        if self.risk is not None:
            self._risk_events(self.risk.on_mark(pnl))

    # ------------------------------------------------------------------ quoting on and off

    def pause(self) -> None:
        """An operator's pause: the strategy pauses and every venue is handed an empty set."""
        self.paused = True
        if self.strategy is not None:
            self._dispatch(self.strategy.set_paused(True))
        self._take_quotes_off()

    def resume(self) -> bool:
        """Lift an operator's pause and the risk engine's; True if either was on."""
        was_paused, self.paused = self.paused, False
        if self.risk is not None and self.risk.paused:
            was_paused = True
            self.risk.resume()  # its "resumed" event re-checks every venue
        if self.strategy is not None:
            self._dispatch(self.strategy.set_paused(False))
        return was_paused

    def stop_quoting(self) -> None:
        """Quotes off for good (give-up, shutdown): the strategy pauses, every venue gets an empty set."""
        if self.strategy is not None:
            self.strategy.set_paused(True)
        self._take_quotes_off()

    # ------------------------------------------------------------------ targets out

    def _dispatch(self, target_sets: Iterable[TargetSet]) -> None:
        """Strategy output -> risk -> order managers, synchronously."""
        snapshot: MarketSnapshot | None = None  # one per dispatch: nothing it holds can change in it
        for targets in target_sets:
            self.raw_targets[targets.venue] = targets
            if snapshot is None:
                snapshot = self._market_snapshot()
            self._apply(targets, snapshot)
        if snapshot is not None:
            self._on_dispatch()

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
        self.last_targets[targets.venue] = targets
        self._handed[targets.venue] = pending_exposure(targets)

    def _market_snapshot(self) -> MarketSnapshot:
        return market_snapshot(
            self.strategy, self.venues, self.aggregator, self.rules, self._assets, self.clock.time()
        )

    def _risk_events(self, events: list[RiskEvent], recheck: bool = True) -> None:
        """Report limit events; when one starts or stops pulling quotes, re-check every venue."""
        if not events:
            return
        for event in events:
            data = event_dict(event)
            level = log.warning if event.severity != "info" else log.info
            level("risk_event", **data)
            self._on_risk_event(data)
        if any(e.kind in WIDENING_KINDS for e in events):
            self._apply_spread_factors()
        if recheck and any(e.pulls_quotes or e.kind in RELEASING_KINDS for e in events):
            for targets in list(self.raw_targets.values()):
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

    def _book_health(self) -> dict[tuple[str, str], BookHealth]:
        return {(r.name, s): b.health for r in self.venues.values() if r.feed is not None
                for s, b in r.feed.books.items()}
