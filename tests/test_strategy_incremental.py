"""The stacked strategy's caches change no decision.

Two strategies take the same long random sequence of events: book updates (top moves,
deep changes, crossed and out-of-sync books, silence), trades, fills, balance snapshots, our
open orders, clock advances across line timeouts and the hourly window, timers, pauses and
risk widening. One runs as the daemon runs it; the other forgets everything it keeps between
events (inventory lean, line shapes, the last ladder of each passive line and what it was
priced from, size draws per level, the targets of each slot) and so recomputes all of it each
time. Every answer must be the same: target sets, wake-up times and published state.
"""

from __future__ import annotations

from decimal import Decimal
from random import Random
from typing import Any

import pytest

from strategies.book import L2Book
from strategies.clock import ManualClock
from strategies.config import StrategyConfig, StrategyConfigBuilder
from strategies.stacked import StackedStrategy, _pending
from strategies.types import Fill, MarketRules, Side, SyncState, TargetSet, Trade

D = Decimal
VENUES = ("alpha", "beta", "gamma")
# symbol -> (start price, tick, step, min notional)
MARKETS = {
    "BERA/USDT": (2.5, "0.0001", "0.01", "5"),
    "BERA/BTC": (2.5 / 95_000, "0.00000001", "0.1", "0.00005"),
    "BTC/USDT": (95_000.0, "0.01", "0.00001", "5"),
}
RULES = {
    (venue, symbol): MarketRules(symbol, D(tick), D(step), D(step), D(notional))
    for venue in VENUES
    for symbol, (_, tick, step, notional) in MARKETS.items()
}
STEPS = 2500


def config(variant: str) -> StrategyConfig:
    builder = StrategyConfigBuilder("inc").set_basic_info("BERA", ["USDT", "BTC"])
    for venue in VENUES:
        builder.add_venue(venue, symbols=list(MARKETS), stale_after_s=3)
    builder.set_inventory(
        target="24000",
        max_deviation="3000",
        denominator="max_deviation",
        price_method="mark_to_market" if variant == "models" else "accounting",
        no_loss_margin_bps=60,
        skew=0.8,
        size_skew=0.8,
    )
    builder.set_reference(kind="aggregated", max_age_s=4)
    builder.set_volume(periods=[10, 30, 60], average="ewma", combine="mid")
    builder.add_tob_line(
        "tob", "BERA/USDT", hourly_quantity="1500", min_zone_bps=2, max_zone_bps=40, timeout_s=30,
        volume_spread="widen", volume_size="grow",
    )
    builder.add_tob_line(
        "tobbtc", "BERA/BTC", venues=["alpha", "beta"], sides="bid", hourly_quantity="40",
        max_zone_bps=60, timeout_s=20, inventory_skew=False, volume_size="shrink",
    )
    builder.add_passive_line(
        "ladder", "BERA/USDT", mid_spread_bps=25, min_spread_bps=10, max_spread_bps=80, quantity="150",
        levels=3, level_weights=[1.0, 0.6, 0.4], level_step_bps=15, randomization_factor=0.05,
        timeout_s=9, volume_spread="tighten",
    )
    builder.add_passive_line(
        "ladbtc", "BERA/BTC", mid_spread_bps=35, min_spread_bps=20, max_spread_bps=100, quantity="100",
        levels=2, level_step_bps=20, timeout_s=12, reference={"kind": "liquidity_weighted", "depth_bps": 30},
    )
    builder.add_passive_line(
        "near", "BERA/USDT", mid_spread_bps=4, min_spread_bps=1, max_spread_bps=30, quantity="40",
        levels=4, level_step_bps=2, timeout_s=5, randomization_factor=0.3, inventory_skew=False,
        reference={"kind": "single", "venues": ["beta"]},
    )
    if variant == "models":
        builder.add_passive_line(
            "model", "BERA/USDT", mid_spread_bps=20, max_spread_bps=120, quantity="60", levels=2,
            level_step_bps=5, timeout_s=7,
            pricing={"model": "as2008", "gamma": 0.5, "horizon": "rolling", "horizon_s": 60},
            calibration={
                "depth_step": 0.0001, "min_orders": 10, "min_count_per_depth": 2, "vol_min_samples": 5,
            },
        )
    return builder.build()


def forget_caches(strategy: StackedStrategy) -> None:
    """Drop what the strategy keeps between events to save work, or work it out again (not
    what it must remember: inventory, pacing, size draws, volume statistics, its last targets)."""
    strategy._skews.clear()
    strategy._shape_inputs.clear()
    for market in strategy._markets.values():
        if market.tob:
            market.pending_bids, market.pending_asks = _pending(market.last, market.grid)
        for tob in market.tob:
            tob._targets._bids.clear()
            tob._targets._asks.clear()
        for passive in market.passive:
            passive._targets._bids.clear()
            passive._targets._asks.clear()
            passive._last_inputs = None
            passive._bid_sizes = passive._ask_sizes = None


class Script:
    """Random events applied to both strategies alike (they share books and clock)."""

    def __init__(self, seed: int, variant: str) -> None:
        self.rng = Random(seed)
        self.clock = ManualClock(1_700_000_000.0)
        cfg = config(variant)
        self.kept = StackedStrategy(cfg, RULES, self.clock, Random(seed + 1))
        self.fresh = StackedStrategy(cfg, RULES, self.clock, Random(seed + 1))
        self.books = {(v, s): L2Book(v, s) for v in VENUES for s in MARKETS}
        self.mids = {symbol: price for symbol, (price, *_) in MARKETS.items()}
        self.fills = 0
        self.paused = False

    def both(self, event: str, *args: Any) -> None:
        forget_caches(self.fresh)
        kept = getattr(self.kept, event)(*args)
        fresh = getattr(self.fresh, event)(*args)
        assert _sets(kept) == _sets(fresh), event
        assert self.kept.next_wakeup() == self.fresh.next_wakeup()

    def snapshot(self, book: L2Book) -> None:
        tick = D(MARKETS[book.symbol][1])
        mid = round(self.mids[book.symbol] / float(tick)) + self.rng.randint(-3, 3)
        half = self.rng.choice((1, 2, 3, 3, 5, 9))
        bids = [[str(tick * (mid - half - i)), f"{self.rng.uniform(1, 500):.2f}"] for i in range(30)]
        asks = [[str(tick * (mid + half + i)), f"{self.rng.uniform(1, 500):.2f}"] for i in range(30)]
        book.health.state = SyncState.IN_SYNC
        book.health.reason = ""
        book.apply_snapshot(bids, asks, book.seq + 1, self.clock.time())
        book.health.last_update_ts = self.clock.time()

    def delta(self, book: L2Book) -> None:
        rng = self.rng
        symbol = book.symbol
        tick = D(MARKETS[symbol][1])
        if rng.random() < 0.3:
            self.mids[symbol] *= 1 + rng.choice((-1, 1)) * rng.choice((0.5, 1, 1, 2, 10)) * 1e-4
        center = round(self.mids[symbol] / float(tick)) + rng.randint(-3, 3)
        half = rng.choice((1, 2, 3, 3, 5))
        bids = [[str(tick * (center - half)), f"{rng.uniform(1, 500):.2f}"]]
        asks = [[str(tick * (center + half)), f"{rng.uniform(1, 500):.2f}"]]
        best_bid, best_ask = book.best_bid(), book.best_ask()
        if best_bid is not None:  # the old top inside the new spread is gone
            top = round(best_bid / float(tick))
            bids += [[str(tick * p), "0"] for p in range(center - half + 1, top + 1)]
        if best_ask is not None:
            top = round(best_ask / float(tick))
            asks += [[str(tick * p), "0"] for p in range(top, center + half)]
        for _ in range(rng.randint(0, 4)):
            depth = rng.randint(0, 10)
            side = bids if rng.random() < 0.5 else asks
            price = center - half - depth if side is bids else center + half + depth
            side.append([str(tick * price), "0" if rng.random() < 0.2 else f"{rng.uniform(1, 500):.2f}"])
        if rng.random() < 0.01:  # a crossed local book
            bids.append([str(tick * (center + half + 1)), "5"])
        book.apply_delta(bids, asks, book.seq + 1, self.clock.time())
        book.health.last_update_ts = self.clock.time()

    def open_orders(self, venue: str) -> list[tuple[str, Side, Decimal]]:
        orders = [(t.symbol, t.side, t.price) for t in self.kept._last_sets[venue] if self.rng.random() < 0.5]
        for _ in range(self.rng.randint(0, 2)):
            symbol = self.rng.choice(("BERA/USDT", "BERA/BTC"))
            tick = D(MARKETS[symbol][1])
            price = tick * round(self.mids[symbol] * (1 + self.rng.uniform(-0.002, 0.002)) / float(tick))
            orders.append((symbol, self.rng.choice((Side.BUY, Side.SELL)), price))
        return orders

    def step(self) -> None:
        rng, now = self.rng, self.clock.time()
        r = rng.random()
        if r < 0.55:
            book = self.books[rng.choice(list(self.books))]
            if rng.random() < 0.05 or book.best_bid() is None:
                self.snapshot(book)
            else:
                self.delta(book)
            self.both("on_book", book)
        elif r < 0.62:
            venue, symbol = rng.choice(list(self.books))
            traded = (self.books[(venue, symbol)].mid() or self.mids[symbol]) * (1 + rng.uniform(-5e-4, 5e-4))
            side = rng.choice((Side.BUY, Side.SELL))
            trade = Trade(venue, symbol, traded, rng.uniform(0.1, 300), side, now)
            self.kept.on_trade(trade)
            self.fresh.on_trade(trade)
        elif r < 0.66:
            self.fills += 1
            symbol = rng.choice(("BERA/USDT", "BERA/BTC"))
            tick = D(MARKETS[symbol][1])
            price = tick * round(self.mids[symbol] * (1 + rng.uniform(-0.003, 0.003)) / float(tick))
            qty = D(str(round(rng.uniform(0.5, 900), 1)))
            fill = Fill(
                rng.choice(VENUES), symbol, rng.choice((Side.BUY, Side.SELL)), price, qty, D("0.001") * qty,
                rng.choice(("BERA", "USDT")), f"t{self.fills}", f"c{self.fills}",
                rng.choice(("tob", "tobbtc", "ladder", "near", "other")), now - rng.choice((0.0, 0.5, 20.0)),
            )
            self.both("on_fill", fill)
        elif r < 0.67:
            balances = {"BERA": D(rng.randint(6000, 10000)), "USDT": D(rng.randint(15000, 25000))}
            venue = rng.choice(VENUES)
            as_of = now - rng.choice((0.0, 0.3, 5.0))
            self.kept.on_balances(venue, balances, as_of)
            self.fresh.on_balances(venue, balances, as_of)
        elif r < 0.70:
            venue = rng.choice(VENUES)
            orders = self.open_orders(venue)
            self.kept.on_open_orders(venue, orders)
            self.fresh.on_open_orders(venue, orders)
        elif r < 0.72:
            book = self.books[rng.choice(list(self.books))]
            if book.health.state is SyncState.IN_SYNC:
                book.health.state = rng.choice((SyncState.RESYNCING, SyncState.STALE, SyncState.DISCONNECTED))
            else:
                self.snapshot(book)
            self.both("on_book", book)
        elif r < 0.725:
            self.paused = not self.paused
            self.both("set_paused", self.paused)
        elif r < 0.735:
            self.both("set_spread_factor", rng.choice(list(MARKETS)), rng.choice((1.0, 1.0, 1.5, 2.0)))
        elif r < 0.77:
            self.clock.advance(rng.choice((0.3, 1.0, 2.5, 4.0, 11.0)))
        elif r < 0.772:
            self.clock.advance(rng.choice((900.0, 3700.0)))
        elif r < 0.85:
            wake = self.kept.next_wakeup()
            if wake is not None and wake <= self.clock.time():
                self.both("on_timer")
        else:
            self.both("on_book", self.books[rng.choice(list(self.books))])  # the same book again
        self.clock.advance(0.01)


def _sets(sets: list[TargetSet]) -> list[tuple[str, float, list[Any]]]:
    return [(s.venue, s.created_ts, list(s.targets)) for s in sets]


def _state(strategy: StackedStrategy) -> dict[str, Any]:
    state = strategy.state()
    return {
        "lines": {line_id: line.to_redis() for line_id, line in state.lines.items()},
        "inventory": state.inventory.to_redis(),
        "coefficients": state.coefficients_to_redis(),
        "rebalance": state.rebalance_to_redis(),
    }


@pytest.mark.parametrize(("seed", "variant"), [(1, "plain"), (2, "models"), (3, "plain")])
def test_a_strategy_with_its_caches_decides_as_one_that_recomputes_all(seed: int, variant: str) -> None:
    script = Script(seed, variant)
    for book in script.books.values():
        script.snapshot(book)
        script.both("on_book", book)
    quoted = 0
    for step in range(STEPS):
        script.step()
        quoted += sum(len(targets) for targets in script.kept._last_sets.values())
        if step % 50 == 0:
            assert _state(script.kept) == _state(script.fresh)
    assert quoted > STEPS  # the script kept the strategy quoting
