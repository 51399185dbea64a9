"""The simulated market behind the paper venue: fair values, venues, makers and takers."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal

import pytest

from connectors.paper.engine import (
    Balance,
    BookChange,
    Execution,
    MatchingEngine,
    Order,
    OrderStatus,
    SymbolSpec,
)
from connectors.paper.market import (
    MAKER_ACCOUNT,
    TAKER_ACCOUNT,
    FairValueParams,
    ParticipantParams,
    RegimeParams,
    SimulatedMarket,
    VenueNoiseParams,
)
from strategies.clock import ManualClock
from strategies.types import Side

D = Decimal
SPECS = [
    SymbolSpec("BERA/USDT", "BERA", "USDT", D("0.0001"), D("0.01"), D("0.01"), D("5")),
    SymbolSpec("BERA/BTC", "BERA", "BTC", D("0.00000001"), D("0.01"), D("0.01"), D("0.0001")),
    SymbolSpec("BTC/USDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.00001"), D("5")),
    SymbolSpec("ETH/USDT", "ETH", "USDT", D("0.01"), D("0.0001"), D("0.0001"), D("5")),
]
DEMO_FAIR_VALUES = [
    FairValueParams(asset="BERA", start_price=2.5, vol_per_sqrt_s=4e-4),
    FairValueParams(asset="BTC", start_price=95_000),
    FairValueParams(asset="ETH", start_price=3_500),
]


class TakerOrders:
    """Listener collecting the sim taker's orders and their executions."""

    def __init__(self) -> None:
        self.new: list[int] = []
        self.fills: dict[int, list[Execution]] = defaultdict(list)
        self.changes: list[BookChange] = []

    def on_book_change(self, change: BookChange) -> None:
        self.changes.append(change)

    def on_trade(self, execution: Execution) -> None:
        if execution.taker_order.account == TAKER_ACCOUNT:
            self.fills[execution.taker_order.order_id].append(execution)

    def on_order_update(self, order: Order, execution: Execution | None) -> None:
        if order.account == TAKER_ACCOUNT and execution is None and order.status is OrderStatus.NEW:
            self.new.append(order.order_id)

    def on_balance_update(self, account: str, assets: dict[str, Balance]) -> None:
        pass


def build(
    seed: int,
    venues: dict[str, VenueNoiseParams] | None = None,
    fair_values: list[FairValueParams] | None = None,
    participants: ParticipantParams | None = None,
    symbols: list[SymbolSpec] | None = None,
) -> tuple[SimulatedMarket, dict[str, MatchingEngine], ManualClock]:
    clock = ManualClock()
    market = SimulatedMarket(fair_values or DEMO_FAIR_VALUES, seed=seed, clock=clock)
    engines: dict[str, MatchingEngine] = {}
    specs = symbols or SPECS
    for venue, noise in (venues or {"alpha": VenueNoiseParams()}).items():
        engines[venue] = engine = MatchingEngine(specs, clock)
        for spec in specs:
            market.attach(venue, engine, spec.symbol, participants or ParticipantParams(), noise)
    market.seed_books()
    return market, engines, clock


def run(market: SimulatedMarket, clock: ManualClock, seconds: float, dt: float = 0.1) -> None:
    for _ in range(round(seconds / dt)):
        clock.advance(dt)
        market.step(dt)


def spread_bps(engine: MatchingEngine, symbol: str) -> float:
    bid, ask = engine.best_bid_ask(symbol)
    assert bid is not None and ask is not None
    return float((ask - bid) / ((ask + bid) / 2)) * 1e4


def mid(engine: MatchingEngine, symbol: str) -> float:
    bid, ask = engine.best_bid_ask(symbol)
    assert bid is not None and ask is not None
    return float(bid + ask) / 2


# ------------------------------------------------------------------ reproducibility


def flow(engines: dict[str, MatchingEngine]) -> list[tuple[str, str, int, Decimal, Decimal, Side]]:
    return [
        (venue, spec.symbol, ex.trade_id, ex.price, ex.qty, ex.taker_side)
        for venue, engine in engines.items()
        for spec in SPECS
        for ex in engine.recent_trades(spec.symbol, 10_000)
    ]


def test_same_seed_and_step_sequence_give_the_same_flow() -> None:
    venues = {"alpha": VenueNoiseParams(), "beta": VenueNoiseParams(lag_s=0.5)}
    runs = []
    for seed in (7, 7, 8):
        market, engines, clock = build(seed, venues)
        run(market, clock, 20)
        books = [e.depth(s.symbol, 1000) for e in engines.values() for s in SPECS]
        runs.append((flow(engines), books, market.fair_value("BERA", "USDT")))

    assert len(runs[0][0]) > 50
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0]
    assert runs[0][2] != runs[2][2]


FLOW_DIGEST = """
import hashlib
from tests.test_paper_market import VenueNoiseParams, build, flow, run
market, engines, clock = build(42, {"alpha": VenueNoiseParams(), "beta": VenueNoiseParams(lag_s=0.3)})
run(market, clock, 10)
print(hashlib.sha256(repr(flow(engines)).encode()).hexdigest(), len(flow(engines)))
"""


def test_the_seed_reproduces_the_flow_across_processes() -> None:
    # Separate interpreters with different string hashing: nothing may depend on set/dict hash order.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digests = {
        subprocess.run(
            [sys.executable, "-c", FLOW_DIGEST],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(digests) == 1
    assert int(digests.pop().split()[1]) > 20


# ------------------------------------------------------------------ book shape


def test_books_are_deep_with_spreads_of_a_few_to_tens_of_bps() -> None:
    market, engines, clock = build(3, {"alpha": VenueNoiseParams(), "beta": VenueNoiseParams(lag_s=1)})
    spreads: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _ in range(10):
        run(market, clock, 6)
        for venue, engine in engines.items():
            for spec in SPECS:
                bids, asks, _ = engine.depth(spec.symbol, 1000)
                assert len(bids) >= 20 and len(asks) >= 20, (venue, spec.symbol, len(bids), len(asks))
                assert bids[0][0] < asks[0][0]
                spreads[(venue, spec.symbol)].append(spread_bps(engine, spec.symbol))

    for key, values in spreads.items():
        assert 1 <= statistics.median(values) <= 40, (key, values)


def median_spread_bps(vol_multiplier: float) -> float:
    fv = FairValueParams(asset="BERA", start_price=2.5, regimes=[RegimeParams(vol_multiplier=vol_multiplier)])
    market, engines, clock = build(21, fair_values=[fv], symbols=SPECS[:1])
    spreads = []
    for _ in range(20):
        run(market, clock, 1)
        spreads.append(spread_bps(engines["alpha"], "BERA/USDT"))
    return statistics.median(spreads)


def test_makers_widen_their_spreads_in_a_volatile_regime() -> None:
    calm, hot = median_spread_bps(1.0), median_spread_bps(9.0)  # spreads scale with sqrt(vol): x3
    assert 2 < hot / calm < 4.5


def test_makers_requote_so_the_book_churns_without_any_taker() -> None:
    quiet = ParticipantParams(taker_rate_per_s=0)
    market, engines, clock = build(5, participants=quiet, symbols=SPECS[:1])
    engine = engines["alpha"]
    seeded = {o.order_id for o in engine.open_orders(MAKER_ACCOUNT)}
    seeded_changes = engine.depth("BERA/USDT")[2]

    run(market, clock, 30)

    still_there = {o.order_id for o in engine.open_orders(MAKER_ACCOUNT)}
    assert engine.recent_trades("BERA/USDT") == []
    assert len(seeded - still_there) > len(seeded) // 3  # a good part re-quoted ...
    assert len(still_there - seeded) > len(seeded) // 3  # ... and posted again
    assert engine.depth("BERA/USDT")[2] - seeded_changes > len(seeded)
    bids, asks, _ = engine.depth("BERA/USDT", 1000)
    assert len(bids) >= 20 and len(asks) >= 20


def test_makers_and_takers_trade_under_the_engine_rules_with_conserved_balances() -> None:
    market, engines, clock = build(9, symbols=SPECS[:2])
    engine = engines["alpha"]

    def totals() -> dict[str, Decimal]:
        out: dict[str, Decimal] = defaultdict(Decimal)
        for account in (MAKER_ACCOUNT, TAKER_ACCOUNT):
            for asset, bal in engine.balances(account).items():
                assert bal.free >= 0 and bal.locked >= 0
                out[asset] += bal.total
        for asset, fee in engine.fees.items():
            out[asset] += fee
        return dict(out)

    before = totals()
    run(market, clock, 30)

    assert len(engine.recent_trades("BERA/USDT")) > 10
    assert totals() == before
    locked: dict[str, Decimal] = defaultdict(Decimal)
    for order in engine.open_orders(MAKER_ACCOUNT):
        assert order.price is not None
        spec = engine.spec(order.symbol)
        if order.side is Side.BUY:
            locked[spec.quote] += order.price * order.remaining
        else:
            locked[spec.base] += order.remaining
    assert {a: b.locked for a, b in engine.balances(MAKER_ACCOUNT).items() if b.locked} == dict(locked)


# ------------------------------------------------------------------ fair value and venues


def test_cross_pair_follows_the_ratio_of_its_legs() -> None:
    volatile_btc = [
        FairValueParams(asset="BERA", start_price=2.5, vol_per_sqrt_s=0, jump_intensity_per_s=0),
        FairValueParams(asset="BTC", start_price=95_000, vol_per_sqrt_s=2e-3, jump_intensity_per_s=0),
    ]
    market, engines, clock = build(
        4, {"alpha": VenueNoiseParams(noise_bps=1)}, volatile_btc, symbols=[SPECS[1], SPECS[2]]
    )
    engine = engines["alpha"]
    ratios, deviations_bps = [], []
    for _ in range(30):
        run(market, clock, 2)
        ratio = market.fair_value("BERA", "USDT") / market.fair_value("BTC", "USDT")
        assert market.fair_value("BERA", "BTC") == pytest.approx(ratio, rel=1e-12)
        ratios.append(ratio)
        deviations_bps.append(abs(mid(engine, "BERA/BTC") / ratio - 1) * 1e4)

    # BERA/BTC moved a lot (all of it from BTC) and its book stayed on the ratio.
    assert (max(ratios) / min(ratios) - 1) * 1e4 > 150
    assert statistics.median(deviations_bps) < 15


def test_venues_see_one_fair_value_through_their_own_lag_and_noise() -> None:
    venues = {
        "alpha": VenueNoiseParams(noise_bps=0, lag_s=0),
        "beta": VenueNoiseParams(noise_bps=0, lag_s=2),
        "gamma": VenueNoiseParams(noise_bps=5, lag_s=0),
    }
    market, engines, clock = build(6, venues, symbols=SPECS[:1])
    history: list[float] = []
    gamma_noise_bps = []
    for _ in range(300):
        run(market, clock, 0.1)
        history.append(market.fair_value("BERA", "USDT"))
        assert market.venue_view("alpha", "BERA/USDT") == pytest.approx(history[-1], rel=1e-12)
        if len(history) > 20:
            assert market.venue_view("beta", "BERA/USDT") == pytest.approx(history[-21], rel=1e-12)
        gamma_noise_bps.append((market.venue_view("gamma", "BERA/USDT") / history[-1] - 1) * 1e4)

    assert 1 < statistics.pstdev(gamma_noise_bps) + abs(statistics.mean(gamma_noise_bps)) < 20
    assert max(abs(n) for n in gamma_noise_bps) < 30
    mids = [mid(e, "BERA/USDT") for e in engines.values()]
    assert max(mids) / min(mids) - 1 < 0.01  # same asset, same price within the spreads


def test_regimes_switch_and_scale_the_volatility() -> None:
    regimes = [
        RegimeParams(name="calm", vol_multiplier=1, mean_duration_s=40),
        RegimeParams(name="hot", vol_multiplier=5, mean_duration_s=40),
    ]
    fv = FairValueParams(
        asset="BERA", start_price=2.5, vol_per_sqrt_s=2e-4, jump_intensity_per_s=0, regimes=regimes
    )
    market = SimulatedMarket([fv], seed=1, clock=ManualClock())
    returns: dict[str, list[float]] = defaultdict(list)
    dt = 0.5
    last = math.log(market.fair_value("BERA", "USDT"))
    switches, regime = 0, market.regime("BERA")
    for _ in range(4000):
        market.step(dt)
        now = math.log(market.fair_value("BERA", "USDT"))
        returns[market.regime("BERA")].append(now - last)
        last = now
        switches += market.regime("BERA") != regime
        regime = market.regime("BERA")

    assert 20 < switches < 100  # 2000 s at a mean of 40 s per regime: ~50
    calm = statistics.pstdev(returns["calm"]) / math.sqrt(dt)
    hot = statistics.pstdev(returns["hot"]) / math.sqrt(dt)
    assert calm == pytest.approx(2e-4, rel=0.15)
    assert hot == pytest.approx(1e-3, rel=0.15)


def test_jumps_arrive_as_a_poisson_process_with_the_configured_size() -> None:
    fv = FairValueParams(
        asset="BTC", start_price=95_000, vol_per_sqrt_s=0, jump_intensity_per_s=0.1, jump_size_sigma=0.01
    )
    market = SimulatedMarket([fv], seed=2, clock=ManualClock())
    jumps = []
    last = math.log(market.fair_value("BTC", "USDT"))
    for _ in range(20_000):
        market.step(0.1)
        now = math.log(market.fair_value("BTC", "USDT"))
        if now != last:
            jumps.append(now - last)
        last = now

    expected = 0.1 * 2000  # mean 200, sd ~14
    assert abs(len(jumps) - expected) < 4 * math.sqrt(expected)
    assert statistics.pstdev(jumps) == pytest.approx(0.01, rel=0.2)


# ------------------------------------------------------------------ takers


def count_taker_orders(volume_multiplier: float, seed: int) -> int:
    fv = FairValueParams(
        asset="BERA", start_price=2.5, regimes=[RegimeParams(volume_multiplier=volume_multiplier)]
    )
    participants = ParticipantParams(taker_rate_per_s=2.0, sweep_probability=0)
    market, engines, clock = build(seed, fair_values=[fv], participants=participants, symbols=SPECS[:1])
    recorder = TakerOrders()
    engines["alpha"].listeners.append(recorder)
    run(market, clock, 100, dt=0.25)
    return len(recorder.new)


def test_takers_arrive_as_a_poisson_process_scaled_by_the_volume_regime() -> None:
    normal = count_taker_orders(1.0, seed=11)  # expect 200, sd ~14
    busy = count_taker_orders(3.0, seed=12)  # expect 600, sd ~24.5
    assert abs(normal - 200) < 4 * math.sqrt(200)
    assert abs(busy - 600) < 4 * math.sqrt(600)


def test_takers_sometimes_sweep_several_levels() -> None:
    participants = ParticipantParams(taker_rate_per_s=1.0, sweep_probability=0.5, sweep_levels_max=5)
    market, engines, clock = build(13, participants=participants, symbols=SPECS[:1])
    recorder = TakerOrders()
    engines["alpha"].listeners.append(recorder)
    run(market, clock, 30)

    levels_taken = [len({ex.price for ex in fills}) for fills in recorder.fills.values()]
    assert sum(1 for n in levels_taken if n >= 2) >= 5
    assert sum(1 for n in levels_taken if n == 1) >= 5


# ------------------------------------------------------------------ driving


def test_step_without_dt_advances_by_the_clock() -> None:
    market, _, clock = build(1, symbols=SPECS[:1])
    market.step()  # first call only starts the clock
    clock.advance(2.5)
    market.step()
    assert market.now == pytest.approx(2.5)


def test_attaching_a_symbol_nothing_prices_is_refused() -> None:
    market = SimulatedMarket(DEMO_FAIR_VALUES[:1], seed=1, clock=ManualClock())
    engine = MatchingEngine(SPECS, ManualClock())
    with pytest.raises(KeyError):
        market.attach("alpha", engine, "ETH/USDT", ParticipantParams(), VenueNoiseParams())
