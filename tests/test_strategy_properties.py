"""Properties of the whole strategy over random books, references, inventories and line settings:
our quotes never cross a book, our own resting orders or each other, always respect the market's
rules, and inventory beyond the max deviation never quotes the side that would grow it."""

from __future__ import annotations

from decimal import Decimal
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.book import L2Book
from strategies.clock import ManualClock
from strategies.config import StrategyConfig, StrategyConfigBuilder
from strategies.lines import TickGrid
from strategies.lines.tob import bid_zone
from strategies.stacked import StackedStrategy
from strategies.types import MarketRules, Side, SyncState, TargetSet

D = Decimal
VENUES = ("alpha", "beta", "gamma")
TICK = D("0.0001")
RULES = {(v, "BERA/USDT"): MarketRules("BERA/USDT", TICK, D("0.01"), D("0.01"), D("5")) for v in VENUES}

# best bid ticks (venues near one another, as arbitrage keeps them) and spread ticks
book_offsets = st.tuples(st.integers(-40, 40), st.integers(1, 60))


@st.composite
def setups(draw: st.DrawFn) -> tuple[StrategyConfig, list[tuple[int, int]], str, list[tuple[str, Side, int]]]:
    min_zone = draw(st.floats(0, 30))
    passive_min = draw(st.floats(0, 20))
    builder = (
        StrategyConfigBuilder("prop")
        .set_basic_info("BERA", ["USDT"])
        .set_inventory(
            target="12000",
            max_deviation="6000",
            denominator=draw(st.sampled_from(["target", "max_deviation"])),
            skew=draw(st.floats(0, 1)),
            size_skew=draw(st.floats(0, 1)),
            price_method="manual",
            manual_price=str(draw(st.integers(18_000, 32_000)) * TICK),
            no_loss_margin_bps=draw(st.none() | st.floats(0, 300)),
        )
        .set_reference(
            **draw(st.sampled_from([{"kind": "aggregated"}, {"kind": "single", "venues": ["gamma"]}]))
        )
        .add_tob_line(
            "tob",
            "BERA/USDT",
            hourly_quantity="3000",
            min_zone_bps=min_zone,
            max_zone_bps=min_zone + draw(st.floats(0.5, 100)),
            sides=draw(st.sampled_from(["bid", "ask", "both"])),
        )
        .add_passive_line(
            "pas",
            "BERA/USDT",
            mid_spread_bps=draw(st.floats(0.5, 80)),
            min_spread_bps=passive_min,
            max_spread_bps=passive_min + draw(st.floats(0.5, 100)),
            quantity=str(draw(st.integers(5, 500))),
            levels=draw(st.integers(1, 4)),
            level_step_bps=draw(st.floats(1, 30)),
            randomization_factor=draw(st.floats(0, 0.5)),
        )
    )
    for venue in VENUES:
        builder.add_venue(venue, symbols=["BERA/USDT"])
    center = draw(st.integers(20_000, 30_000))
    tops = [(center + offset, spread) for offset, spread in (draw(book_offsets) for _ in VENUES)]
    balance = str(draw(st.integers(0, 10_000) | st.integers(3_000, 5_000)))
    resting = draw(
        st.lists(
            st.tuples(
                st.sampled_from(VENUES), st.sampled_from([Side.BUY, Side.SELL]), st.integers(19_000, 31_000)
            ),
            max_size=4,
        )
    )
    return builder.build(), tops, balance, resting


def run(
    config: StrategyConfig, tops: list[tuple[int, int]], balance: str, resting: list[tuple[str, Side, int]]
) -> tuple[StackedStrategy, dict[str, L2Book], dict[str, TargetSet]]:
    clock = ManualClock()
    strategy = StackedStrategy(config, RULES, clock, Random(0))
    for venue in VENUES:
        strategy.on_balances(venue, {"BERA": D(balance), "USDT": D("50000")})
        orders = [("BERA/USDT", side, ticks * TICK) for v, side, ticks in resting if v == venue]
        strategy.on_open_orders(venue, orders)
    books: dict[str, L2Book] = {}
    sets: dict[str, TargetSet] = {}
    for venue, (bid, spread) in zip(VENUES, tops, strict=True):
        book = L2Book(venue, "BERA/USDT")
        book.health.state = SyncState.IN_SYNC
        book.apply_snapshot(
            [[str(bid * TICK), "100"]], [[str((bid + spread) * TICK), "100"]], 1, clock.time()
        )
        books[venue] = book
        for target_set in strategy.on_book(book):
            sets[target_set.venue] = target_set
    return strategy, books, sets


@settings(max_examples=150, deadline=None)
@given(setups())
def test_quotes_never_cross_the_book_our_orders_or_each_other(
    setup: tuple[StrategyConfig, list[tuple[int, int]], str, list[tuple[str, Side, int]]],
) -> None:
    config, tops, balance, resting = setup
    _, books, sets = run(config, tops, balance, resting)
    for venue, target_set in sets.items():
        book = books[venue]
        best_bid, best_ask = D(str(book.best_bid())), D(str(book.best_ask()))
        bids = [t.price for t in target_set.targets if t.side is Side.BUY]
        asks = [t.price for t in target_set.targets if t.side is Side.SELL]
        assert all(b < best_ask for b in bids)
        assert all(a > best_bid for a in asks)
        if bids and asks:
            assert max(bids) < min(asks)
        own_asks = [ticks * TICK for v, side, ticks in resting if v == venue and side is Side.SELL]
        own_bids = [ticks * TICK for v, side, ticks in resting if v == venue and side is Side.BUY]
        assert all(b < a for b in bids for a in own_asks)
        assert all(a > b for a in asks for b in own_bids)
        for target in target_set.targets:
            assert RULES[(venue, "BERA/USDT")].violation(target.price, target.size) is None


@settings(max_examples=100, deadline=None)
@given(setups(), st.sampled_from(["long", "short"]), st.integers(0, 4000))
def test_inventory_beyond_max_deviation_never_quotes_the_growing_side(
    setup: tuple[StrategyConfig, list[tuple[int, int]], str, list[tuple[str, Side, int]]],
    direction: str,
    excess: int,
) -> None:
    config, tops, _, resting = setup
    # 3 venues: total = 12000 +/- (6000 + excess)
    per_venue = (12_000 + 6_000 + excess) / 3 if direction == "long" else (12_000 - 6_000 - excess) / 3
    strategy, _, sets = run(config, tops, str(D(per_venue).quantize(D("0.01"))), resting)
    deviation = float(strategy.inventory.position) - 12_000
    assert abs(deviation) >= 6_000 - 0.02
    growing = Side.BUY if direction == "long" else Side.SELL
    for target_set in sets.values():
        if abs(deviation) >= 6_000:
            assert all(t.side is not growing for t in target_set.targets)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.5, 5.0), st.floats(0, 100), st.floats(0.01, 100))
def test_zone_edges_are_on_the_grid_and_inside_the_zone(
    reference: float, min_bps: float, width: float
) -> None:
    grid = TickGrid(RULES[("alpha", "BERA/USDT")])
    zone = bid_zone(grid, reference, min_bps, min_bps + width, None)
    if not zone.empty:
        assert zone.hi * 1e-4 <= reference * (1 - min_bps * 1e-4) + 1e-12
        assert zone.lo * 1e-4 >= reference * (1 - (min_bps + width) * 1e-4) - 1e-12
