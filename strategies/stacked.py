"""The stacked market-making strategy (seed 004): TOB lines and passive lines side by side.

Events in, one :class:`~strategies.types.TargetSet` per venue out. The daemon calls:

* ``on_book(book)`` on every applied book update — it returns target sets only for the venues
  whose quotes changed, so the order manager is touched only when needed;
* ``on_trade`` (volume statistics), ``on_fill`` (inventory, hourly pacing; re-quotes),
  ``on_balances`` (inventory reconciliation), ``on_open_orders`` (our resting orders, for
  taker protection and to ignore our own levels when pricing at the top of book);
* ``on_timer()`` at ``next_wakeup()``: passive size redraws at each line timeout, and a TOB
  side whose hourly budget frees up;
* ``set_paused``; ``state()`` for Redis.

Per (venue, symbol) the targets of every enabled line are computed, then checked together:
no bid of ours may reach any ask of ours on the same market (the side that would grow the
inventory loses the conflicting quotes). A book that is not in sync or is silent beyond the
venue's ``stale_after_s`` quotes nothing; a symbol without a reference price quotes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from random import Random
from typing import Any, Literal, Protocol

from strategies.aggregator import exclusion_reason
from strategies.book import L2Book
from strategies.calibration import CalibrationState, Calibrator
from strategies.clock import Clock
from strategies.config import PassiveLineConfig, ReferenceConfig, StrategyConfig, TobLineConfig
from strategies.inventory import InventoryManager, InventoryState, RebalanceSuggestion
from strategies.lines import TickGrid
from strategies.lines.passive import PassiveLine
from strategies.lines.shaping import NEUTRAL, InventorySkew, LineShape, line_shape
from strategies.lines.tob import TobLine
from strategies.models import missing_inputs
from strategies.models import quote as pricing_quote
from strategies.models.base import ModelQuote
from strategies.reference import ReferenceKind, ReferencePrice, ReferenceSpec, reference_price
from strategies.types import Fill, MarketRules, QuoteTarget, Side, TargetSet, Trade
from strategies.volume import VolumeCoefficientSpec, VolumeTrackers

Market = tuple[str, str]  # (venue, symbol)
_STALE_SLACK_S = 1e-3  # wake just after a book's staleness limit, not just before it


class RestingOrder(Protocol):
    """What ``on_open_orders`` needs of an open order (the order manager's records fit)."""

    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def price(self) -> Decimal: ...


OpenOrder = RestingOrder | tuple[Side, Decimal] | tuple[str, Side, Decimal]
"""An open order: an object with symbol/side/price (and optionally remaining/size, line_id),
or ``(side, price)`` (applies to every symbol of the venue), or ``(symbol, side, price)``."""


def reference_spec(config: ReferenceConfig) -> ReferenceSpec:
    """The reference module's spec for a config section."""
    return ReferenceSpec(
        kind=ReferenceKind(config.kind),
        venues=config.venues if config.kind != "aggregated" else None,
        depth_bps=config.depth_bps,
        max_age_s=config.max_age_s,
        price=config.price,
    )


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class LineState:
    """One line's published state (Redis hash ``line:<id>``)."""

    line_id: str
    kind: Literal["tob", "passive"]
    symbol: str
    venues: list[str]
    enabled: bool
    targets: int = 0  # orders the line wants now (all venues)
    active_orders: int = 0  # orders of the line resting on venues (from on_open_orders)
    placed: int = 0
    filled: int = 0
    filled_qty: Decimal = Decimal(0)
    cancelled: int = 0
    rejected: int = 0
    spread_coefficient: dict[str, float] = field(default_factory=dict)  # per venue
    size_coefficient: dict[str, float] = field(default_factory=dict)  # per venue
    quotes: list[tuple[str, str, int, str, str]] = field(default_factory=list)  # venue, side, level, px, qty
    updated_ts: float = 0.0
    pricing: str = ""  # passive lines with a pricing model: the model, or what it waits for

    def to_redis(self) -> dict[str, str]:
        return {
            "line_id": self.line_id,
            "kind": self.kind,
            "symbol": self.symbol,
            "venues": ",".join(self.venues),
            "enabled": "1" if self.enabled else "0",
            "targets": str(self.targets),
            "active_orders": str(self.active_orders),
            "placed": str(self.placed),
            "filled": str(self.filled),
            "filled_qty": str(self.filled_qty),
            "cancelled": str(self.cancelled),
            "rejected": str(self.rejected),
            "spread_coefficient": json.dumps(self.spread_coefficient),
            "size_coefficient": json.dumps(self.size_coefficient),
            "quotes": json.dumps(self.quotes),
            "updated_ts": repr(self.updated_ts),
            "pricing": self.pricing,
        }


@dataclass(slots=True)
class StrategyState:
    """Everything the strategy publishes; the daemon writes each part under its Redis key."""

    instance: str
    paused: bool
    lines: dict[str, LineState]
    inventory: InventoryState
    volume_coefficients: dict[str, float]  # "venue" (primary symbol) and "venue:symbol"
    inventory_coefficient: float
    references: dict[str, float | None]
    reference_reasons: dict[str, str]
    rebalance: list[RebalanceSuggestion]

    def coefficients_to_redis(self) -> dict[str, str]:
        """Hash ``coefficients``: per venue volume coefficient, plus ``inventory``."""
        out = {key: repr(value) for key, value in sorted(self.volume_coefficients.items())}
        out["inventory"] = repr(self.inventory_coefficient)
        for symbol, value in self.references.items():
            out[f"reference:{symbol}"] = "" if value is None else repr(value)
        return out

    def rebalance_to_redis(self) -> dict[str, str]:
        return {s.asset: s.to_json() for s in self.rebalance}


# --------------------------------------------------------------------------- the strategy


class _Market:
    """Per (venue, symbol): its grid, its lines, our resting orders, its last targets."""

    __slots__ = (
        "book",
        "grid",
        "last",
        "open_asks",
        "open_bids",
        "passive",
        "pending_asks",
        "pending_bids",
        "quote",
        "stale_after_s",
        "tob",
    )

    def __init__(self, grid: TickGrid, stale_after_s: float, quote: str) -> None:
        self.grid = grid
        self.stale_after_s = stale_after_s
        self.quote = quote  # the asset prices are in
        self.book: L2Book | None = None
        self.tob: list[TobLine] = []
        self.passive: list[PassiveLine] = []
        self.open_bids: dict[int, float] = {}
        self.open_asks: dict[int, float] = {}
        self.last: list[QuoteTarget] = []
        self.pending_bids: dict[int, float] = {}
        self.pending_asks: dict[int, float] = {}

    def set_last(self, targets: list[QuoteTarget]) -> None:
        """Record the market's latest targets (and, per price, what they will rest)."""
        # only TOB pricing looks for our own levels in the book; the very same targets as
        # before give the same maps
        if self.tob and not _same(targets, self.last):
            self.pending_bids, self.pending_asks = _pending(targets, self.grid)
        self.last = targets


class StackedStrategy:
    """TOB and passive lines over several venues, leaned by inventory and volume."""

    def __init__(
        self,
        config: StrategyConfig,
        rules: Mapping[tuple[str, str], MarketRules],
        clock: Clock,
        rng: Random | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._rng = rng if rng is not None else Random()
        self._paused = False
        self._primary_quote = config.quotes[0]
        self._primary_symbol = f"{config.base}/{self._primary_quote}"
        self._reference = reference_spec(config.reference)
        vol = config.volume
        self._volume = VolumeTrackers(
            VolumeCoefficientSpec(
                periods_s=tuple(vol.periods),
                average=vol.average,
                volume_type=vol.volume_type,
                combine=vol.combine,
                min_coefficient=vol.min_coefficient,
                max_coefficient=vol.max_coefficient,
            ),
            clock,
        )
        self._volume_cache: dict[Market, tuple[float, float]] = {}  # market -> (computed at, value)
        self.inventory = InventoryManager(
            config.inventory, config.base, self._primary_quote, list(config.venues)
        )
        self._markets: dict[Market, _Market] = {}
        self._books_by_symbol: dict[str, dict[Market, L2Book]] = {}
        self._line_refs: dict[str, ReferenceSpec] = {}
        self._refs: dict[str, ReferencePrice] = {}
        self._last_sets: dict[str, list[QuoteTarget]] = {v: [] for v in config.venues}
        self._skews: dict[str, tuple[tuple[Any, ...], InventorySkew, InventorySkew]] = {}
        self._shapes: dict[tuple[str, str], LineShape] = {}  # (line id, venue) -> last shape
        # (line id, venue) -> the inputs of its last shape (volume, lean, widening) and the shape
        self._shape_inputs: dict[tuple[str, str], tuple[float, InventorySkew, float, LineShape]] = {}
        self._spread_factors: dict[str, float] = {}  # symbol -> risk widening (absent: 1)
        self._stats_ts = 0.0  # when the targets last changed
        self._active: dict[tuple[str, str], int] = {}  # (line id, venue) -> resting orders
        self._calibrators: dict[str, Calibrator] = {}  # passive line id -> its model's calibration
        self._calibration_cache: dict[str, tuple[int, CalibrationState]] = {}
        self._model_cache: dict[str, tuple[tuple[float, int, int], ModelQuote | None]] = {}
        self.unquotable: list[tuple[str, str, str]] = []  # (line id, venue, why) at construction
        self.lines: dict[str, LineState] = {}
        t0 = clock.time()
        for line in config.lines:
            venues = config.line_venues(line)
            kind: Literal["tob", "passive"] = "tob" if isinstance(line, TobLineConfig) else "passive"
            self.lines[line.id] = LineState(line.id, kind, line.symbol, venues, line.enabled)
            if isinstance(line, PassiveLineConfig) and line.reference is not None:
                self._line_refs[line.id] = reference_spec(line.reference)
            if isinstance(line, PassiveLineConfig) and line.pricing is not None:
                self.lines[line.id].pricing = line.pricing.model
                if line.calibration is not None:
                    self._calibrators[line.id] = Calibrator(line.calibration)
            if not line.enabled:
                continue
            for venue in venues:
                market_rules = rules.get((venue, line.symbol))
                if market_rules is None:
                    self.unquotable.append((line.id, venue, f"no market rules for {line.symbol}"))
                    continue
                market = self._market(venue, line.symbol, market_rules)
                if isinstance(line, TobLineConfig):
                    market.tob.append(TobLine(line, venue, market.grid))
                else:
                    market.passive.append(PassiveLine(line, venue, market.grid, self._rng, t0))
        self._traded = frozenset(symbol for (_, symbol) in self._markets)  # symbols some line quotes
        # fixed from here on: the markets of each symbol and venue (in _markets order), and the
        # references each symbol's update recomputes (the strategy's, then the lines' own)
        self._symbol_markets: dict[str, list[Market]] = {}
        self._venue_markets: dict[str, list[_Market]] = {venue: [] for venue in config.venues}
        for (venue, symbol), market in self._markets.items():
            self._symbol_markets.setdefault(symbol, []).append((venue, symbol))
            self._venue_markets[venue].append(market)
        self._reference_specs: dict[str, list[tuple[str, ReferenceSpec]]] = {}
        self._symbol_calibrators: dict[str, list[tuple[str, Calibrator]]] = {}
        for symbol in self._traded:
            self._reference_specs[symbol] = [(symbol, self._reference)] + [
                (f"{symbol}#{line_id}", spec)
                for line_id, spec in self._line_refs.items()
                if self.lines[line_id].symbol == symbol
            ]
            self._symbol_calibrators[symbol] = [
                (line_id, calibrator)
                for line_id, calibrator in self._calibrators.items()
                if self.lines[line_id].symbol == symbol
            ]

    def _market(self, venue: str, symbol: str, rules: MarketRules) -> _Market:
        key = (venue, symbol)
        market = self._markets.get(key)
        if market is None:
            quote = symbol.partition("/")[2]
            market = _Market(TickGrid(rules), self.config.venues[venue].stale_after_s, quote)
            self._markets[key] = market
        return market

    # ------------------------------------------------------------------ properties

    @property
    def venues(self) -> list[str]:
        return list(self.config.venues)

    @property
    def symbols(self) -> list[str]:
        """Every symbol the strategy reads (traded ones and those only used for conversion)."""
        return sorted({s for v in self.config.venues.values() for s in v.symbols})

    @property
    def books_needed(self) -> list[Market]:
        """(venue, symbol) pairs the daemon must stream books for."""
        return [(name, s) for name, v in self.config.venues.items() for s in v.symbols]

    @property
    def paused(self) -> bool:
        return self._paused

    # ------------------------------------------------------------------ events

    def on_book(self, book: L2Book) -> list[TargetSet]:
        """A book changed: re-quote the venues whose targets change because of it."""
        symbol = book.symbol
        key = (book.venue, symbol)
        self._books_by_symbol.setdefault(symbol, {})[key] = book
        market = self._markets.get(key)
        if market is not None:
            market.book = book
        self._update_rate(book)
        if self._paused or not self._symbol_traded(symbol):
            return []
        if self._update_references(symbol):
            # the reference moves every venue's passive ladder in this symbol
            return self._requote(self._symbol_markets[symbol])
        return self._requote([key] if market is not None else [])

    def on_trade(self, trade: Trade) -> None:
        """A public trade: volume statistics and the pricing models' arrival-rate calibration."""
        self._volume.on_trade(trade)
        self._volume_cache.pop((trade.venue, trade.symbol), None)
        for line_id, calibrator in self._calibrators.items():
            if self.lines[line_id].symbol == trade.symbol:
                calibrator.on_trade(trade)

    def warm_start_volume(self, trades: Iterable[Trade], since: float | None = None) -> int:
        """Replay persisted market trades into the volume trackers (after a restart)."""
        self._volume_cache.clear()
        return self._volume.warm_start(trades, since)

    def on_fill(self, fill: Fill) -> list[TargetSet]:
        """One of our fills: inventory, pacing and line stats; every venue may re-quote."""
        if not self.inventory.on_fill(fill):
            return []
        stats = self.lines.get(fill.line_id)
        if stats is not None:
            stats.filled += 1
            stats.filled_qty += fill.qty
        market = self._markets.get((fill.venue, fill.symbol))
        if market is not None:
            for tob in market.tob:
                if tob.line_id == fill.line_id:
                    tob.on_fill(fill.side, float(fill.qty), self._clock.time())
        if self._paused:
            return []
        return self._requote(list(self._markets))

    def on_balances(
        self, venue: str, balances: Mapping[str, Decimal], as_of: float | None = None
    ) -> None:
        """A venue balance snapshot (totals per asset) as of venue time ``as_of`` (see
        ``InventoryManager.on_balances``); the next re-quote sees the new inventory."""
        self.inventory.on_balances(venue, balances, as_of)

    def on_open_orders(self, venue: str, orders: Sequence[OpenOrder]) -> None:
        """Our orders resting on ``venue`` now (replaces what was known for that venue)."""
        per_market: dict[str, tuple[dict[int, float], dict[int, float]]] = {}
        venue_symbols = [s for (v, s) in self._markets if v == venue]
        active: dict[str, int] = {}
        for order in orders:
            symbol, side, price, qty, line_id = _order_fields(order)
            for sym in [symbol] if symbol is not None else venue_symbols:
                market = self._markets.get((venue, sym))
                if market is None:
                    continue
                bids, asks = per_market.setdefault(sym, ({}, {}))
                grid = market.grid
                if side is Side.BUY:
                    t = grid.floor_ticks(float(price))
                    bids[t] = bids.get(t, 0.0) + qty
                else:
                    t = grid.ceil_ticks(float(price))
                    asks[t] = asks.get(t, 0.0) + qty
            if line_id is not None:
                active[line_id] = active.get(line_id, 0) + 1
        for sym in venue_symbols:
            market = self._markets[(venue, sym)]
            market.open_bids, market.open_asks = per_market.get(sym, ({}, {}))
        for line_id, stats in self.lines.items():
            if venue in stats.venues:
                self._active[(line_id, venue)] = active.get(line_id, 0)
                stats.active_orders = sum(self._active.get((line_id, v), 0) for v in stats.venues)

    def on_order_event(self, line_id: str, event: Literal["placed", "cancelled", "rejected"]) -> None:
        """The venue took, cancelled or refused one of a line's orders (line statistics; fills
        count through ``on_fill``)."""
        stats = self.lines.get(line_id)
        if stats is None:
            return
        if event == "placed":
            stats.placed += 1
        elif event == "cancelled":
            stats.cancelled += 1
        else:
            stats.rejected += 1

    def set_spread_factor(self, symbol: str, factor: float) -> list[TargetSet]:
        """Widen every line's spreads in ``symbol`` by ``factor`` (≥ 1; 1 = as configured).

        The risk engine's volatility (and profit target) widening: passive spreads and TOB zones
        (min and max distance from the reference) are multiplied, on top of the volume and
        inventory coefficients. Returns the target sets that change now."""
        if not factor >= 1.0:  # also rejects NaN
            raise ValueError(f"spread factor must be ≥ 1, not {factor}")
        if self._spread_factors.get(symbol, 1.0) == factor:
            return []
        if factor == 1.0:
            self._spread_factors.pop(symbol, None)
        else:
            self._spread_factors[symbol] = factor
        if self._paused:
            return []
        return self._requote(self._symbol_markets.get(symbol, []))

    def spread_factor(self, symbol: str) -> float:
        """The widening ``set_spread_factor`` put on ``symbol`` (1 when none)."""
        return self._spread_factors.get(symbol, 1.0)

    def on_timer(self) -> list[TargetSet]:
        """Line timeouts (passive size redraws) and hourly budgets freeing up."""
        if self._paused:
            return []
        return self._requote(list(self._markets))

    def next_wakeup(self) -> float | None:
        """Clock time at which ``on_timer`` should run next (None: nothing scheduled)."""
        if self._paused:
            return None
        now = self._clock.time()
        times: list[float] = []
        for market in self._markets.values():
            times.extend(p.next_refresh(now) for p in market.passive)
            times.extend(t for tob in market.tob if (t := tob.next_release(now)) is not None)
            book = market.book
            if market.last and book is not None:
                # a book that falls silent must pull its quotes without waiting for an update
                times.append(max(book.ts, book.health.last_update_ts) + market.stale_after_s + _STALE_SLACK_S)
        return min(times) if times else None

    def set_paused(self, paused: bool) -> list[TargetSet]:
        """Paused: an empty target set for every venue. Resumed: a fresh set for every venue."""
        self._paused = paused
        now = self._clock.time()
        if paused:
            for market in self._markets.values():
                market.set_last([])
            self._last_sets = {v: [] for v in self.config.venues}
            for stats in self.lines.values():
                stats.targets = 0
                stats.quotes = []
            return [TargetSet(venue, [], now) for venue in self.config.venues]
        for symbol in {s for (_, s) in self._markets}:
            self._update_references(symbol)
        sets = self._requote(list(self._markets))
        emitted = {s.venue for s in sets}
        return sets + [self._venue_set(v, now) for v in self.config.venues if v not in emitted]

    # ------------------------------------------------------------------ pricing

    def _symbol_traded(self, symbol: str) -> bool:
        return symbol in self._traded

    def _update_rate(self, book: L2Book) -> None:
        """Books of QUOTE/PRIMARY (e.g. BTC/USDT) convert cross-symbol prices for the inventory."""
        base, _, quote = book.symbol.partition("/")
        if quote == self._primary_quote and base in self.config.quotes:
            mid = book.mid()
            if mid is not None and book.health.usable:
                self.inventory.set_rate(base, mid)

    def _update_references(self, symbol: str) -> bool:
        """Recompute the symbol's reference prices; True if any value changed."""
        books = self._books_by_symbol.get(symbol, {})
        now = self._clock.time()
        changed = False
        for name, spec in self._reference_specs[symbol]:
            ref = reference_price(spec, books, symbol, now)
            old = self._refs.get(name)
            if old is None or old.value != ref.value:
                changed = True
            self._refs[name] = ref
        if symbol == self._primary_symbol:
            value = self._refs[symbol].value
            if value is not None:
                self.inventory.on_mark(value)
        if changed:
            for line_id, calibrator in self._symbol_calibrators[symbol]:
                line_ref = self._refs.get(f"{symbol}#{line_id}", self._refs[symbol])
                if line_ref.value is not None:
                    calibrator.on_mid(line_ref.value, now)
        return changed

    def _volume_coefficient(self, market: Market) -> float:
        now = self._clock.time()
        cached = self._volume_cache.get(market)
        # the coefficient compares minutes-long averages: recomputing it more than once a
        # second per market would only cost time on the hot path
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        value = self._volume.coefficient(market[0], market[1], now)
        self._volume_cache[market] = (now, value)
        return value

    def _skews_for(self, quote: str) -> tuple[InventorySkew, InventorySkew]:
        """The inventory's lean on quotes in ``quote``, and the same without the lean (the
        permissions and no-loss prices still bind every line)."""
        # the lean moves only with holdings and cost basis (version), the inventory price
        # (no-loss prices) and the rate of ``quote``: all that InventoryManager.skew reads
        inv = self.inventory
        key = (inv.version, inv.inventory_price(), inv.rate(quote))
        cached = self._skews.get(quote)
        if cached is None or cached[0] != key:
            skew = inv.skew(quote)
            cached = self._skews[quote] = (key, skew, _neutral_like(skew))
        return cached[1], cached[2]

    def _shape(
        self, line_id: str, venue: str, volume: float, config: TobLineConfig | PassiveLineConfig,
        lean: InventorySkew, widen: float,
    ) -> LineShape:
        """The line's shape on ``venue`` (the same object while its inputs hold)."""
        key = (line_id, venue)
        cached = self._shape_inputs.get(key)
        if cached is not None and cached[0] == volume and cached[1] is lean and cached[2] == widen:
            shape = cached[3]
        else:
            shape = _widened(line_shape(volume, config.volume_spread, config.volume_size, lean), widen)
            self._shape_inputs[key] = (volume, lean, widen, shape)
        self._shapes[key] = shape
        return shape

    def _quote_market(self, key: Market, market: _Market) -> list[QuoteTarget]:
        venue, symbol = key
        book = market.book
        now = self._clock.time()
        if book is None or exclusion_reason(book, now, market.stale_after_s) is not None:
            return []
        if book.is_crossed():
            return []  # a crossed local book means missed updates: do not price off it
        skew, neutral = self._skews_for(market.quote)
        volume = self._volume_coefficient(key)
        own_bids, own_asks = market.open_bids, market.open_asks
        pending_bids, pending_asks = market.pending_bids, market.pending_asks
        ref = self._refs.get(symbol)
        widen = self._spread_factors.get(symbol, 1.0)
        targets: list[QuoteTarget] = []
        for tob in market.tob:
            if ref is None or ref.value is None:
                break
            cfg = tob.config
            shape = self._shape(cfg.id, venue, volume, cfg, skew if cfg.inventory_skew else neutral, widen)
            targets.extend(
                tob.quote(book, ref.value, shape, now, own_bids, own_asks, pending_bids, pending_asks)
            )
        for passive in market.passive:
            line_ref = self._refs.get(f"{symbol}#{passive.line_id}", ref)
            if line_ref is None or line_ref.value is None:
                continue
            cfg_p = passive.config
            lean = skew if cfg_p.inventory_skew else neutral
            shape = self._shape(cfg_p.id, venue, volume, cfg_p, lean, widen)
            model = self._model_quote(cfg_p, line_ref.value, now) if cfg_p.pricing is not None else None
            targets.extend(passive.quote(book, line_ref.value, shape, now, own_bids, own_asks, model))
        return _uncross(targets, self.inventory)

    def _model_quote(self, line: PassiveLineConfig, reference: float, now: float) -> ModelQuote | None:
        """The line's pricing-model quote around ``reference`` (None: static spread fallback).

        Computed once per reference, inventory change and second, not once per venue; the
        calibration snapshot is read at most once a second (its intensity fit is a regression).
        """
        pricing = line.pricing
        assert pricing is not None
        second = int(now)
        key = (reference, self.inventory.version, second)
        cached = self._model_cache.get(line.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        calibration: CalibrationState | None = None
        calibrator = self._calibrators.get(line.id)
        if calibrator is not None:
            snap = self._calibration_cache.get(line.id)
            if snap is None or snap[0] != second:
                snap = (second, calibrator.state(now))
                self._calibration_cache[line.id] = snap
            calibration = snap[1]
        quote = pricing_quote(pricing, reference, self.inventory.deviation, None, now, calibration)
        self.lines[line.id].pricing = (
            pricing.model if quote is not None else missing_inputs(pricing, None, calibration)
        )
        self._model_cache[line.id] = (key, quote)
        return quote

    def _requote(self, keys: Iterable[Market]) -> list[TargetSet]:
        venues: set[str] = set()
        for key in keys:
            market = self._markets[key]
            market.set_last(self._quote_market(key, market))
            venues.add(key[0])
        now = self._clock.time()
        out: list[TargetSet] = []
        for venue in sorted(venues):
            target_set = self._venue_set(venue, now)
            # unchanged quotes are the very same objects (TargetCache), so this is mostly `is`
            if target_set.targets != self._last_sets.get(venue):
                self._last_sets[venue] = target_set.targets
                out.append(target_set)
                self._stats_ts = now
        return out

    def _venue_set(self, venue: str, now: float) -> TargetSet:
        targets: list[QuoteTarget] = []
        for market in self._venue_markets[venue]:
            targets.extend(market.last)
        return TargetSet(venue, targets, now)

    def _refresh_line_stats(self) -> None:
        """Fill the lines' quote statistics from the current targets (on demand: off the hot path)."""
        now = self._stats_ts
        per_line: dict[str, list[QuoteTarget]] = {line_id: [] for line_id in self.lines}
        for market in self._markets.values():
            for target in market.last:
                per_line.setdefault(target.line_id, []).append(target)
        for line_id, stats in self.lines.items():
            targets = per_line.get(line_id, [])
            stats.targets = len(targets)
            stats.quotes = [(t.venue, t.side.value, t.level, str(t.price), str(t.size)) for t in targets]
            stats.updated_ts = now
            for venue in stats.venues:
                shape = self._shapes.get((line_id, venue))
                if shape is not None:
                    stats.spread_coefficient[venue] = shape.spread_coefficient
                    stats.size_coefficient[venue] = shape.size_coefficient

    # ------------------------------------------------------------------ state

    def state(self) -> StrategyState:
        now = self._clock.time()
        coefficients: dict[str, float] = {}
        for venue, symbol in self._markets:
            value = self._volume.coefficient(venue, symbol, now)
            coefficients[f"{venue}:{symbol}"] = value
            if symbol == self._primary_symbol:
                coefficients[venue] = value
        self._refresh_line_stats()
        inventory = self.inventory.state()
        refs = {name: ref.value for name, ref in self._refs.items()}
        reasons = {name: ref.reason for name, ref in self._refs.items() if ref.reason}
        return StrategyState(
            instance=self.config.instance,
            paused=self._paused,
            lines={
                k: dataclasses.replace(
                    v,
                    spread_coefficient=dict(v.spread_coefficient),
                    size_coefficient=dict(v.size_coefficient),
                    quotes=list(v.quotes),
                )
                for k, v in self.lines.items()
            },
            inventory=inventory,
            volume_coefficients=coefficients,
            inventory_coefficient=self.inventory.coefficient(),
            references=refs,
            reference_reasons=reasons,
            rebalance=inventory.rebalance,
        )


# --------------------------------------------------------------------------- helpers


def _widened(shape: LineShape, factor: float) -> LineShape:
    if factor == 1.0:
        return shape
    return dataclasses.replace(shape, widen=factor)


def _neutral_like(skew: InventorySkew) -> InventorySkew:
    return dataclasses.replace(
        NEUTRAL,
        bid_allowed=skew.bid_allowed,
        ask_allowed=skew.ask_allowed,
        bid_cap=skew.bid_cap,
        ask_floor=skew.ask_floor,
    )


def _order_fields(order: OpenOrder) -> tuple[str | None, Side, Decimal, float, str | None]:
    """(symbol or None, side, price, resting qty, line id or None) of an open order."""
    if isinstance(order, tuple):
        if len(order) == 2:
            side, price = order
            return None, Side(side), Decimal(price), 0.0, None
        symbol, side, price = order
        return symbol, Side(side), Decimal(price), 0.0, None
    qty: Any = None
    for attr in ("remaining", "size", "qty", "amount"):
        qty = getattr(order, attr, None)
        if qty is not None:
            break
    line_id = getattr(order, "line_id", None)
    return (
        order.symbol,
        Side(order.side),
        Decimal(order.price),
        float(qty) if qty is not None else 0.0,
        line_id if isinstance(line_id, str) else None,
    )


def _same(a: list[QuoteTarget], b: list[QuoteTarget]) -> bool:
    """True when both lists hold the very same target objects in the same order."""
    return len(a) == len(b) and all(map(operator.is_, a, b))


def _pending(last: list[QuoteTarget], grid: TickGrid) -> tuple[dict[int, float], dict[int, float]]:
    """Our latest targets per price (ticks) and side: orders that may rest already."""
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    buy = Side.BUY
    tick = grid.tick
    for t in last:
        side = bids if t.side is buy else asks
        ticks = round(float(t.price) / tick)  # grid.ticks, inline: it runs per target per update
        side[ticks] = side.get(ticks, 0.0) + float(t.size)
    return bids, asks


def _uncross(targets: list[QuoteTarget], inventory: InventoryManager) -> list[QuoteTarget]:
    """Quotes of different lines on one market never cross: the growing side yields.

    Long (inventory coefficient c ≥ 0): bids at or above our lowest ask are dropped; short:
    asks at or below our highest bid are dropped.
    """
    highest_bid: Decimal | None = None
    lowest_ask: Decimal | None = None
    for t in targets:
        price = t.price
        if t.side is Side.BUY:
            if highest_bid is None or price > highest_bid:
                highest_bid = price
        elif lowest_ask is None or price < lowest_ask:
            lowest_ask = price
    if highest_bid is None or lowest_ask is None or highest_bid < lowest_ask:
        return targets
    if inventory.coefficient() >= 0.0:
        return [t for t in targets if t.side is Side.SELL or t.price < lowest_ask]
    return [t for t in targets if t.side is Side.BUY or t.price > highest_bid]


__all__ = [
    "LineState",
    "OpenOrder",
    "RestingOrder",
    "StackedStrategy",
    "StrategyState",
    "reference_spec",
]
