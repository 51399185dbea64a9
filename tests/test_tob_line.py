"""TOB line pricing and sizing against hand-computed cases (BERA/USDT: tick 0.0001, step 0.01)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from strategies.book import L2Book
from strategies.config import TobLineConfig
from strategies.lines import TickGrid
from strategies.lines.shaping import NEUTRAL, InventorySkew, LineShape
from strategies.lines.tob import TobLine, Zone, bid_zone, tob_ask_ticks, tob_bid_ticks
from strategies.types import MarketRules, Side

RULES = MarketRules("BERA/USDT", Decimal("0.0001"), Decimal("0.01"), Decimal("0.01"), Decimal("5"))
GRID = TickGrid(RULES)
PLAIN = LineShape(1.0, 1.0, NEUTRAL)
NOW = 1_700_000_000.0


def tob(**overrides: Any) -> TobLine:
    fields: dict[str, Any] = {
        "id": "tob1",
        "symbol": "BERA/USDT",
        "hourly_quantity": "2000",
        "min_zone_bps": 0,
        "max_zone_bps": 40,
        "timeout_s": 30,
    }
    fields.update(overrides)
    return TobLine(TobLineConfig.model_validate(fields), "alpha", GRID)


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> L2Book:
    b = L2Book("alpha", "BERA/USDT")
    b.apply_snapshot([list(x) for x in bids], [list(x) for x in asks], 1, NOW)
    return b


def prices(targets: list[Any]) -> dict[Side, Decimal]:
    return {t.side: t.price for t in targets}


STANDARD = book([("2.4990", "100"), ("2.4980", "200")], [("2.5010", "100"), ("2.5020", "300")])


def test_bid_is_best_bid_plus_tick_and_ask_best_ask_minus_tick() -> None:
    quoted = prices(tob().quote(STANDARD, 2.5, PLAIN, NOW))
    assert quoted == {Side.BUY: Decimal("2.4991"), Side.SELL: Decimal("2.5009")}


def test_one_tick_spread_joins_the_best_prices_instead_of_crossing() -> None:
    tight = book([("2.4999", "100")], [("2.5000", "100")])
    quoted = prices(tob().quote(tight, 2.49995, PLAIN, NOW))
    assert quoted == {Side.BUY: Decimal("2.4999"), Side.SELL: Decimal("2.5000")}


def test_near_zone_edge_clamps_the_bid_down_and_the_ask_up() -> None:
    # min zone 10 bps around ref 2.5: bid <= 2.4975, ask >= 2.5025
    quoted = prices(tob(min_zone_bps=10).quote(STANDARD, 2.5, PLAIN, NOW))
    assert quoted == {Side.BUY: Decimal("2.4975"), Side.SELL: Decimal("2.5025")}


def test_far_zone_edge_lifts_quotes_in_a_wide_book() -> None:
    wide = book([("2.4000", "100")], [("2.6000", "100")])
    # max zone 40 bps around 2.5: bid >= 2.49, ask <= 2.51
    quoted = prices(tob().quote(wide, 2.5, PLAIN, NOW))
    assert quoted == {Side.BUY: Decimal("2.4900"), Side.SELL: Decimal("2.5100")}


def test_zone_edges_off_the_grid_round_inward() -> None:
    wide = book([("2.4000", "100")], [("2.6000", "100")])
    ref = 2.50005  # far edges 2.490050.. and 2.510050..: inward is 2.4901 and 2.5100
    quoted = prices(tob().quote(wide, ref, PLAIN, NOW))
    assert quoted == {Side.BUY: Decimal("2.4901"), Side.SELL: Decimal("2.5100")}
    assert float(quoted[Side.BUY]) >= ref * (1 - 40e-4)
    assert float(quoted[Side.SELL]) <= ref * (1 + 40e-4)


def test_zone_edge_exactly_on_a_tick_is_not_rounded_a_tick_away() -> None:
    # 2.5 * (1 - 4e-4) = 2.499 in decimals, 2.4989999999999997 in floats
    assert bid_zone(GRID, 2.5, 4.0, 40.0, None).hi == 24990
    quoted = prices(tob(min_zone_bps=4).quote(STANDARD, 2.5, PLAIN, NOW))
    assert quoted[Side.BUY] == Decimal("2.4990")


def test_zone_narrower_than_a_tick_quotes_nothing() -> None:
    # [2.5*(1-1.1e-4), 2.5*(1-1e-4)] = [2.499725, 2.49975]: no tick inside
    assert tob(min_zone_bps=1.0, max_zone_bps=1.1).quote(STANDARD, 2.5, PLAIN, NOW) == []


def test_bid_never_reaches_our_own_resting_ask() -> None:
    # our ask at 2.4991 was just placed and is not in this book yet
    quoted = prices(tob().quote(STANDARD, 2.5, PLAIN, NOW, own_asks={24991: 10.0}))
    assert quoted[Side.BUY] == Decimal("2.4990")


def test_ask_never_reaches_our_own_resting_bid() -> None:
    quoted = prices(tob().quote(STANDARD, 2.5, PLAIN, NOW, own_bids={25009: 10.0}))
    assert quoted[Side.SELL] == Decimal("2.5010")


def test_a_level_holding_only_our_order_is_not_stepped_over() -> None:
    # our bid 2.4991 (16.66) is alone at the top: stepping ahead of it would walk the price up
    mine = book([("2.4991", "16.66"), ("2.4990", "100")], [("2.5010", "100")])
    quoted = prices(tob().quote(mine, 2.5, PLAIN, NOW, own_bids={24991: 16.66}))
    assert quoted[Side.BUY] == Decimal("2.4991")
    # someone joins our level: it is the market's price again, so we step ahead
    joined = book([("2.4991", "50"), ("2.4990", "100")], [("2.5010", "100")])
    quoted = prices(tob().quote(joined, 2.5, PLAIN, NOW, own_bids={24991: 16.66}))
    assert quoted[Side.BUY] == Decimal("2.4992")


def test_zone_beyond_the_book_skips_the_side_rather_than_cross() -> None:
    # reference far below the book: the ask zone [2.4, 2.4096] is under the best bid 2.4990
    quoted = prices(tob().quote(STANDARD, 2.4, PLAIN, NOW))
    assert Side.SELL not in quoted
    assert quoted[Side.BUY] == Decimal("2.4000")  # bid held at the zone's near edge


def test_pure_tick_functions_cap_at_the_taker_limit() -> None:
    zone = Zone(0, 10**9)
    assert tob_bid_ticks(100, 101, None, zone) == 100  # one-tick spread: join
    assert tob_bid_ticks(100, 105, 102, zone) == 101  # own ask at 102 caps at 101
    assert tob_bid_ticks(100, None, None, Zone(90, 95)) == 95
    assert tob_bid_ticks(100, 103, None, Zone(104, 110)) is None  # zone above the taker cap
    assert tob_ask_ticks(105, 100, None, zone) == 104
    assert tob_ask_ticks(105, 104, None, zone) == 105
    assert tob_ask_ticks(105, 100, 103, zone) == 104
    assert tob_ask_ticks(105, 100, 104, zone) == 105  # own bid at 104 floors at 105


def test_sides_select_bid_or_ask() -> None:
    assert set(prices(tob(sides="bid").quote(STANDARD, 2.5, PLAIN, NOW))) == {Side.BUY}
    assert set(prices(tob(sides="ask").quote(STANDARD, 2.5, PLAIN, NOW))) == {Side.SELL}


def test_size_is_the_hourly_rate_paced_over_one_timeout() -> None:
    targets = tob(hourly_quantity="2000", timeout_s=30).quote(STANDARD, 2.5, PLAIN, NOW)
    # 2000 * 30 / 3600 = 16.666.. -> 16.66 (sizes round down to the step)
    assert {t.size for t in targets} == {Decimal("16.66")}
    assert all(t.max_age_s == 30 for t in targets)


def test_hourly_budget_cuts_the_size_then_stops_the_side_until_fills_age_out() -> None:
    line = tob(hourly_quantity="100", timeout_s=300)  # 8.33 per order
    line.on_fill(Side.BUY, 95.0, NOW - 1800)
    sizes = {t.side: t.size for t in line.quote(STANDARD, 2.5, PLAIN, NOW)}
    assert sizes == {Side.BUY: Decimal("5.00"), Side.SELL: Decimal("8.33")}
    line.on_fill(Side.BUY, 5.0, NOW - 10)
    assert {t.side for t in line.quote(STANDARD, 2.5, PLAIN, NOW)} == {Side.SELL}
    assert line.next_release(NOW) == pytest.approx(NOW + 1800)
    # an hour after the first fill only the 5 remain counted
    sizes = {t.side: t.size for t in line.quote(STANDARD, 2.5, PLAIN, NOW + 1800)}
    assert sizes[Side.BUY] == Decimal("8.33")


def test_a_size_below_min_notional_is_skipped_not_rounded_up() -> None:
    # 100 * 30 / 3600 = 0.83 BERA * 2.5 = 2.08 USDT < 5 USDT min notional
    assert tob(hourly_quantity="100").quote(STANDARD, 2.5, PLAIN, NOW) == []


def test_volume_coefficient_widens_the_zone_and_grows_the_size() -> None:
    shape = LineShape(spread_coefficient=2.0, size_coefficient=1.5, skew=NEUTRAL)
    line = tob(min_zone_bps=10, max_zone_bps=40)
    targets = line.quote(STANDARD, 2.5, shape, NOW)
    # min zone 10 bps doubled to 20: bid <= 2.4950, ask >= 2.5050; size 16.666 * 1.5 = 25.0
    assert prices(targets) == {Side.BUY: Decimal("2.4950"), Side.SELL: Decimal("2.5050")}
    assert {t.size for t in targets} == {Decimal("25.00")}


def test_long_inventory_pushes_the_bid_zone_out_and_shrinks_the_bid() -> None:
    skew = InventorySkew.from_coefficient(0.5, skew=1.0, size_skew=1.0)
    targets = tob(min_zone_bps=10).quote(STANDARD, 2.5, LineShape(1.0, 1.0, skew), NOW)
    by_side = {t.side: t for t in targets}
    # bid zone min 10 * 1.5 = 15 bps -> 2.49625 -> 2.4962; ask zone min 10 * 0.5 = 5 bps -> 2.50125 -> 2.5013
    assert by_side[Side.BUY].price == Decimal("2.4962")
    assert by_side[Side.SELL].price == Decimal("2.5013")
    assert by_side[Side.BUY].size == Decimal("8.33")  # 16.666 * (1 - 0.5)
    assert by_side[Side.SELL].size == Decimal("16.66")


def test_inventory_beyond_max_deviation_and_no_loss_cap() -> None:
    skew = InventorySkew(bid_allowed=False, ask_floor=2.5020)
    targets = tob().quote(STANDARD, 2.5, LineShape(1.0, 1.0, skew), NOW)
    assert prices(targets) == {Side.SELL: Decimal("2.5020")}
