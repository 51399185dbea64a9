"""What the risk path keeps or skips to save work changes no check.

* The engine keeps each symbol's price-band edges while its reference holds: random checks
  through an engine as it runs and through a copy without them pass, shrink, drop and report
  alike, and leave the same state.
* Targets leave a check in ladder order (level, symbol, side, line), ties in the order given.
* The event path's risk context (positions and aggregated mids worked out when first read, the
  exposure of each venue's last handed set kept with it) is the one an eager build gives, at
  every check of a random run of it.
"""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from random import Random
from typing import Any

import pytest

from connectors.execution.credentials import Credentials
from daemon.config_loader import load_config
from daemon.event_path import EventPath
from daemon.risk_gate import AGGREGATED_MID, risk_config
from daemon.venues import VenueRuntime
from strategies.book import L2Book
from strategies.clock import ManualClock
from strategies.config import StrategyConfig
from strategies.reference import reference_price
from strategies.risk import RiskConfig, RiskContext, RiskEngine
from strategies.types import BookHealth, Fill, MarketRules, QuoteTarget, Side, SyncState, TargetSet, Trade

D = Decimal
VENUES = ("alpha", "beta", "gamma")
SYMBOLS = ("BERA/USDT", "BERA/BTC", "ETH/USDT")
ASSETS = {"BERA/USDT": ("BERA", "USDT"), "BERA/BTC": ("BERA", "BTC"), "ETH/USDT": ("ETH", "USDT")}
PRICES = {"BERA/USDT": 2.5, "BERA/BTC": 2.5 / 95_000, "ETH/USDT": 3000.0}
RULES = {
    "BERA/USDT": MarketRules("BERA/USDT", D("0.0001"), D("0.01"), D("0.01"), D("5")),
    "BERA/BTC": MarketRules("BERA/BTC", D("0.00000001"), D("0.1"), D("0.1"), D("0.00005")),
    "ETH/USDT": MarketRules("ETH/USDT", D("0.01"), D("0.0001"), D("0.0001"), D("5")),
}
CHECKS = 1500


def random_config(rng: Random) -> RiskConfig:
    def bound(low: int, high: int) -> dict[str, str]:
        out = {}
        if rng.random() < 0.8:
            out["min"] = str(low)
        if rng.random() < 0.8:
            out["max"] = str(high)
        return out

    limits = {"BERA": bound(23_000, 25_000)}
    if rng.random() < 0.5:
        limits["USDT"] = bound(55_000, 65_000)
    if rng.random() < 0.3:
        limits["BTC"] = bound(0, 1)
    return RiskConfig.model_validate({
        "position_limits": limits if rng.random() < 0.8 else {},
        "orders": {"max_size": rng.choice([None, "120"]), "max_notional": rng.choice([None, "300"])},
        "symbols": {"BERA/BTC": {"max_size": "90"}} if rng.random() < 0.5 else {},
        "price_band_bps": rng.choice([None, 60.0, 300.0]),
        "volatility": {"widen_above": 5.0, "stop_above": 20.0},
        "max_book_age_s": rng.choice([None, 0.8]),
        "stale_pulls": rng.choice(["venue", "symbol"]),
    })


def random_targets(rng: Random, venue: str, references: dict[str, float]) -> list[QuoteTarget]:
    targets = []
    for _ in range(rng.randint(0, 14)):
        symbol = rng.choice(SYMBOLS)
        rules = RULES[symbol]
        price = references.get(symbol, PRICES[symbol]) * (1 + rng.uniform(-0.012, 0.012))
        ticks = max(1, round(price / float(rules.tick)))
        steps = rng.choice([1, 5, 37, 150, 600, 1500, 9000])
        targets.append(QuoteTarget(
            venue, symbol, rng.choice((Side.BUY, Side.SELL)), rules.tick * ticks, rules.step * steps,
            rng.choice(("tob", "ladder", "ladbtc")), rng.randint(0, 3),
        ))
    return targets


def random_context(rng: Random, references: dict[str, float], now: float) -> RiskContext:
    health = {}
    for venue in VENUES:
        for symbol in SYMBOLS:
            state = SyncState.IN_SYNC if rng.random() < 0.93 else rng.choice(list(SyncState))
            health[(venue, symbol)] = BookHealth(state, now - rng.choice((0.0, 0.1, 0.5, 1.0)))
    resting = {
        (venue, symbol, side): D(rng.randint(0, 900)) / rng.choice((1, 10))
        for venue in VENUES for symbol in SYMBOLS for side in Side if rng.random() < 0.4
    }
    return RiskContext(
        positions={"BERA": D(rng.randint(22_000, 26_000)), "USDT": D(rng.randint(50_000, 70_000)),
                   "BTC": D(rng.randint(0, 20)) / 10},
        resting=resting,
        reference_prices={s: p for s, p in references.items() if rng.random() < 0.95},
        book_health=health,
        assets={s: a for s, a in ASSETS.items() if s != "ETH/USDT" or rng.random() < 0.5},
        rules={(v, s): r for v in VENUES for s, r in RULES.items() if rng.random() < 0.9},
    )


def _targets(targets: list[QuoteTarget]) -> list[tuple[Any, ...]]:
    return [(t.venue, t.symbol, t.side, t.price, str(t.size), t.line_id, t.level) for t in targets]


def _ladder(t: QuoteTarget) -> tuple[int, str, str, str]:
    return (t.level, t.symbol, t.side.value, t.line_id)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_checks_through_the_running_engine_match_checks_without_its_band_edges(seed: int) -> None:
    rng = Random(seed)
    clock = ManualClock(1_700_000_000.0)
    engine = RiskEngine(random_config(rng), clock)
    references = dict(PRICES)
    bites = ties = 0
    for _ in range(CHECKS):
        clock.advance(rng.choice((0.01, 0.01, 0.3, 2.0)))
        if rng.random() < 0.3:  # references move now and then, and stay put in between
            symbol = rng.choice(SYMBOLS)
            references[symbol] = PRICES[symbol] * (1 + rng.uniform(-0.01, 0.01))
        if rng.random() < 0.05:
            engine.on_volatility(rng.choice((1.0, 8.0, 30.0)), rng.choice((None, *SYMBOLS)))
        if rng.random() < 0.02:
            engine.on_mark(rng.gauss(0, 1000))
        if rng.random() < 0.02:
            engine.resume()
        venue = rng.choice(VENUES)
        wanted = TargetSet(venue, random_targets(rng, venue, references), clock.time())
        ctx = random_context(rng, references, clock.time())
        cold = copy.deepcopy(engine)
        cold._bands.clear()
        passed, events = engine.check(wanted, ctx)
        passed_cold, events_cold = cold.check(wanted, ctx)
        assert _targets(passed.targets) == _targets(passed_cold.targets)
        assert events == events_cold
        assert engine._active == cold._active
        assert engine.state() == cold.state()
        bites += len(events)
        if engine.config.position_limits:
            keys = [_ladder(t) for t in passed.targets]
            assert keys == sorted(keys)
            # equal keys keep the order they came in (unchanged targets are the very same objects)
            index = {id(t): i for i, t in enumerate(wanted.targets)}
            unchanged = [(_ladder(t), index[id(t)]) for t in passed.targets if id(t) in index]
            for (key_a, i), (key_b, j) in pairwise(unchanged):
                ties += key_a == key_b
                assert key_a != key_b or i < j
    assert bites > 50  # the limits did bite
    assert ties > 0 or not engine.config.position_limits


def test_a_limit_that_stopped_biting_reports_again_when_it_bites_again() -> None:
    # a check where nothing bites must still forget what bit on that venue before
    engine = RiskEngine(RiskConfig.model_validate({"orders": {"max_size": "10"}}), ManualClock())
    ctx = RiskContext({}, {}, {"BERA/USDT": 2.5}, {}, {}, {})
    big = TargetSet("alpha", [QuoteTarget("alpha", "BERA/USDT", Side.BUY, D("2.49"), D("20"), "ladder")])
    small = TargetSet("alpha", [QuoteTarget("alpha", "BERA/USDT", Side.BUY, D("2.49"), D("5"), "ladder")])
    assert [e.kind for e in engine.check(big, ctx)[1]] == ["max_order_size"]
    assert engine.check(big, ctx)[1] == []  # still biting: said once
    assert engine.check(small, ctx)[1] == []
    assert [e.kind for e in engine.check(big, ctx)[1]] == ["max_order_size"]


# ------------------------------------------------------------------ the event path's risk context

MARKETS = {
    "BERA/USDT": (2.5, "0.0001", "0.01", "5"),
    "BERA/BTC": (2.5 / 95_000, "0.00000001", "0.1", "0.00005"),
    "BTC/USDT": (95_000.0, "0.01", "0.00001", "5"),
}
CONFIG = Path(__file__).resolve().parents[1] / "config" / "bera-usdt.yaml"


class StubFeed:
    def __init__(self, books: dict[str, L2Book]) -> None:
        self.books = books


class StubOrders:
    """An order manager with some open orders of its own and no I/O."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.orders: list[Any] = []

    def rules(self, symbol: str) -> MarketRules:
        _, tick, step, notional = MARKETS[symbol]
        return MarketRules(symbol, D(tick), D(step), D(step), D(notional))

    def open_orders(self) -> list[Any]:
        return list(self.orders)

    def set_targets(self, targets: TargetSet) -> None:
        return None


class OpenOrder:
    def __init__(self, symbol: str, side: Side, price: Decimal, remaining: Decimal) -> None:
        self.symbol, self.side, self.price, self.remaining = symbol, side, price, remaining
        self.line_id = "ladder"


def eager_context(path: EventPath, config: StrategyConfig) -> dict[str, Any]:
    """The context as built before the lazy snapshot: everything worked out up front."""
    assert path.aggregator is not None
    now = path.clock.time()
    positions = {
        asset: sum((r.position(asset) for r in path.venues.values()), D(0))
        for asset in (config.base, *config.quotes)
    }
    resting: dict[tuple[str, str, Side], Decimal] = {}
    health = {}
    for runtime in path.venues.values():
        assert runtime.orders is not None and runtime.feed is not None
        for order in runtime.orders.open_orders():
            key = (runtime.name, order.symbol, order.side)
            resting[key] = resting.get(key, D(0)) + order.remaining
        for symbol, book in runtime.feed.books.items():
            health[(runtime.name, symbol)] = book.health
    for venue, targets in path.last_targets.items():
        pending: dict[tuple[str, str, Side], Decimal] = {}
        for target in targets.targets:
            key = (venue, target.symbol, target.side)
            pending[key] = pending.get(key, D(0)) + target.size
        for key, qty in pending.items():
            resting[key] = max(resting.get(key, D(0)), qty)
    references = {}
    for symbol in path.aggregator.specs:
        mid = reference_price(AGGREGATED_MID, path.aggregator, symbol, now).value
        if mid is not None:
            references[symbol] = mid
    return {"positions": positions, "resting": list(resting.items()), "references": references,
            "health": health, "assets": {s: (s.split("/")[0], s.split("/")[1]) for (_, s) in path.rules}}


def build_event_path(
    clock: ManualClock,
) -> tuple[EventPath, StrategyConfig, dict[tuple[str, str], L2Book]]:
    """The event path as the daemon's start-up builds it, with stub feeds and order managers."""
    config = load_config(CONFIG)
    venues: dict[str, VenueRuntime] = {}
    path = EventPath(clock, venues)
    books: dict[tuple[str, str], L2Book] = {}
    balances = {"BERA": D(8000), "USDT": D(20000), "BTC": D("0.2")}
    for name, vc in config.venues.items():
        runtime = VenueRuntime(name, vc, Credentials("test", "test"))
        runtime.orders = StubOrders(name)  # type: ignore[assignment]
        venue_books = {symbol: L2Book(name, symbol) for symbol in vc.symbols}
        books.update({(name, symbol): book for symbol, book in venue_books.items()})
        runtime.feed = StubFeed(venue_books)  # type: ignore[assignment]
        runtime.balances = runtime.opening = dict(balances)
        runtime.balances_as_of = runtime.opening_ts = clock.time()
        venues[name] = runtime
    strategy = path.build(config, risk_config(config))
    for runtime in venues.values():
        strategy.on_balances(runtime.name, runtime.balances, runtime.balances_as_of)
    return path, config, books


def set_book(book: L2Book, rng: Random, now: float, mids: dict[str, float]) -> None:
    tick = D(MARKETS[book.symbol][1])
    mid = round(mids[book.symbol] / float(tick)) + rng.randint(-3, 3)
    half = rng.choice((1, 2, 3, 5))
    bids = [[str(tick * (mid - half - i)), f"{rng.uniform(1, 500):.2f}"] for i in range(20)]
    asks = [[str(tick * (mid + half + i)), f"{rng.uniform(1, 500):.2f}"] for i in range(20)]
    book.health.state = SyncState.IN_SYNC
    book.apply_snapshot(bids, asks, book.seq + 1, now)
    book.health.last_update_ts = now


@pytest.mark.parametrize("seed", [1, 2])
def test_the_event_paths_risk_context_is_the_one_an_eager_build_gives(seed: int) -> None:
    rng = Random(seed)
    clock = ManualClock(1_700_000_000.0)
    path, config, books = build_event_path(clock)
    assert path.risk is not None
    mids = {symbol: price for symbol, (price, *_) in MARKETS.items()}
    checked: list[int] = []
    check = path.risk.check

    def compared_check(targets: TargetSet, ctx: RiskContext) -> Any:
        expected = eager_context(path, config)
        assert dict(ctx.positions) == expected["positions"]
        assert list(ctx.resting.items()) == expected["resting"]
        assert dict(ctx.reference_prices) == expected["references"]
        assert dict(ctx.book_health) == expected["health"]
        assert dict(ctx.assets) == expected["assets"]
        checked.append(1)
        return check(targets, ctx)

    path.risk.check = compared_check  # type: ignore[method-assign]
    for book in books.values():
        set_book(book, rng, clock.time(), mids)
        path.on_book(book)
    for step in range(600):
        clock.advance(rng.choice((0.01, 0.01, 0.01, 0.5, 6.0)))
        now = clock.time()
        key = rng.choice(list(books))
        r = rng.random()
        if r < 0.7:
            mids[key[1]] *= 1 + rng.choice((-1, 1)) * rng.choice((1, 3)) * 1e-4
            if rng.random() < 0.05:
                books[key].health.state = SyncState.RESYNCING
            else:
                set_book(books[key], rng, now, mids)
            path.on_book(books[key])
        elif r < 0.8:
            symbol = rng.choice(("BERA/USDT", "BERA/BTC"))
            tick = D(MARKETS[symbol][1])
            fill_price = tick * round(mids[symbol] / float(tick))
            path.on_fill(Fill(key[0], symbol, rng.choice((Side.BUY, Side.SELL)), fill_price,
                              D(rng.randint(1, 300)), D(0), "USDT", f"t{step}", f"c{step}", "ladder", now))
        elif r < 0.9:
            stub = path.venues[key[0]].orders
            assert isinstance(stub, StubOrders)
            stub.orders = [OpenOrder(t.symbol, t.side, t.price, t.size * rng.choice((1, D("0.5"))))
                           for t in path.last_targets.get(key[0], TargetSet(key[0])).targets
                           if rng.random() < 0.5]
        else:
            price = books[key].mid() or math.nan
            path.on_trade(Trade(key[0], key[1], price, 5.0, Side.BUY, now))
    assert len(checked) > 500
