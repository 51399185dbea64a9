"""Passive line ladder pricing and sizing against hand-computed cases (tick 0.0001, step 0.01)."""

from __future__ import annotations

import math
from decimal import Decimal
from random import Random
from typing import Any

from strategies.book import L2Book
from strategies.config import PassiveLineConfig
from strategies.lines import TickGrid
from strategies.lines.passive import PassiveLine, level_spread_bps
from strategies.lines.shaping import NEUTRAL, InventorySkew, LineShape
from strategies.models.base import ModelQuote
from strategies.types import MarketRules, Side

RULES = MarketRules("BERA/USDT", Decimal("0.0001"), Decimal("0.01"), Decimal("0.01"), Decimal("5"))
GRID = TickGrid(RULES)
PLAIN = LineShape(1.0, 1.0, NEUTRAL)
NOW = 1_700_000_000.0


def passive(seed: int = 7, **overrides: Any) -> PassiveLine:
    fields: dict[str, Any] = {
        "id": "pas1",
        "symbol": "BERA/USDT",
        "mid_spread_bps": 20,
        "min_spread_bps": 10,
        "max_spread_bps": 60,
        "quantity": "100",
        "levels": 3,
        "level_step_bps": 10,
        "timeout_s": 120,
    }
    fields.update(overrides)
    return PassiveLine(PassiveLineConfig.model_validate(fields), "alpha", GRID, Random(seed), NOW)


def book(bid: str = "2.4990", ask: str = "2.5010") -> L2Book:
    b = L2Book("alpha", "BERA/USDT")
    b.apply_snapshot([[bid, "100"]], [[ask, "100"]], 1, NOW)
    return b


def ladder(targets: list[Any], side: Side) -> list[Decimal]:
    return [t.price for t in sorted(targets, key=lambda t: t.level) if t.side is side]


def test_ladder_sits_at_mid_spread_and_level_steps_from_the_reference() -> None:
    targets = passive().quote(book(), 2.5, PLAIN, NOW)
    # 20, 30, 40 bps from 2.5
    assert ladder(targets, Side.BUY) == [Decimal("2.4950"), Decimal("2.4925"), Decimal("2.4900")]
    assert ladder(targets, Side.SELL) == [Decimal("2.5050"), Decimal("2.5075"), Decimal("2.5100")]
    assert [t.level for t in targets if t.side is Side.BUY] == [0, 1, 2]
    assert all(t.size == Decimal("100.00") for t in targets)


def test_spread_is_bounded_by_min_and_max() -> None:
    cfg = PassiveLineConfig.model_validate(
        {
            "id": "p",
            "symbol": "BERA/USDT",
            "mid_spread_bps": 5,
            "min_spread_bps": 10,
            "max_spread_bps": 60,
            "quantity": "1",
            "timeout_s": 60,
        }
    )
    assert level_spread_bps(cfg, 0, 5.0) == 10.0
    assert level_spread_bps(cfg, 0, 500.0) == 60.0
    # a tightening volume coefficient (1/0.25 = x4 on 5 bps = 20) stays inside
    targets = passive(mid_spread_bps=5, levels=1).quote(book(), 2.5, LineShape(4.0, 1.0, NEUTRAL), NOW)
    assert ladder(targets, Side.BUY) == [Decimal("2.4950")]
    # widened to 80 bps, clipped to the 60 bps maximum
    targets = passive(levels=1).quote(book(), 2.5, LineShape(4.0, 1.0, NEUTRAL), NOW)
    assert ladder(targets, Side.BUY) == [Decimal("2.4850")]
    assert ladder(targets, Side.SELL) == [Decimal("2.5150")]


def test_prices_round_away_from_the_reference() -> None:
    # 2.50003 * (1 -/+ 0.002) = 2.49503.. / 2.50503..: bid down to 2.4950, ask up to 2.5051
    targets = passive(levels=1).quote(book(), 2.50003, PLAIN, NOW)
    assert ladder(targets, Side.BUY) == [Decimal("2.4950")]
    assert ladder(targets, Side.SELL) == [Decimal("2.5051")]


def test_size_randomization_stays_in_band_holds_for_a_timeout_then_redraws() -> None:
    line = passive(randomization_factor=0.05, levels=3)
    first = {(t.side, t.level): t.size for t in line.quote(book(), 2.5, PLAIN, NOW)}
    assert all(Decimal("95") <= s <= Decimal("105") for s in first.values())
    assert len(set(first.values())) > 1
    again = {(t.side, t.level): t.size for t in line.quote(book(), 2.5, PLAIN, NOW + 119)}
    assert again == first  # same epoch: no size change, no order replacement
    later = {(t.side, t.level): t.size for t in line.quote(book(), 2.5, PLAIN, NOW + 120)}
    assert later != first
    assert line.next_refresh(NOW + 119) == NOW + 120
    # the same seed draws the same ladder
    replay = {
        (t.side, t.level): t.size for t in passive(randomization_factor=0.05).quote(book(), 2.5, PLAIN, NOW)
    }
    assert replay == first


def test_level_weights_shape_the_ladder_sizes() -> None:
    targets = passive(level_weights=[1.0, 0.6, 0.4]).quote(book(), 2.5, PLAIN, NOW)
    sizes = [t.size for t in sorted(targets, key=lambda t: t.level) if t.side is Side.BUY]
    assert sizes == [Decimal("100.00"), Decimal("60.00"), Decimal("40.00")]


def test_a_level_that_would_take_is_skipped() -> None:
    # the venue's ask sits at 2.4930, below the reference-based bids of level 0 (2.4950)
    skewed = book(bid="2.4900", ask="2.4930")
    targets = passive().quote(skewed, 2.5, PLAIN, NOW)
    assert ladder(targets, Side.BUY) == [Decimal("2.4925"), Decimal("2.4900")]
    # and never at or below the venue's best bid on the ask side
    skewed = book(bid="2.5060", ask="2.5200")
    targets = passive().quote(skewed, 2.5, PLAIN, NOW)
    assert ladder(targets, Side.SELL) == [Decimal("2.5075"), Decimal("2.5100")]


def test_own_resting_opposite_order_blocks_a_level() -> None:
    targets = passive().quote(book(), 2.5, PLAIN, NOW, own_asks={24930: 5.0})
    assert ladder(targets, Side.BUY) == [Decimal("2.4925"), Decimal("2.4900")]


def test_long_inventory_widens_and_shrinks_bids_and_tightens_asks() -> None:
    skew = InventorySkew.from_coefficient(0.5, skew=1.0, size_skew=1.0)
    targets = passive(levels=1).quote(book(), 2.5, LineShape(1.0, 1.0, skew), NOW)
    by_side = {t.side: t for t in targets}
    # bid 20 * 1.5 = 30 bps -> 2.4925; ask 20 * 0.5 = 10 bps -> 2.5025
    assert by_side[Side.BUY].price == Decimal("2.4925")
    assert by_side[Side.SELL].price == Decimal("2.5025")
    assert by_side[Side.BUY].size == Decimal("50.00")
    assert by_side[Side.SELL].size == Decimal("100.00")


def test_short_inventory_mirrors_the_lean() -> None:
    skew = InventorySkew.from_coefficient(-0.5, skew=1.0, size_skew=1.0)
    targets = passive(levels=1).quote(book(), 2.5, LineShape(1.0, 1.0, skew), NOW)
    by_side = {t.side: t for t in targets}
    assert by_side[Side.BUY].price == Decimal("2.4975")
    assert by_side[Side.SELL].price == Decimal("2.5075")
    assert by_side[Side.SELL].size == Decimal("50.00")


def test_no_loss_rule_moves_asks_up_to_the_floor() -> None:
    skew = InventorySkew(ask_floor=2.5080)
    targets = passive().quote(book(), 2.5, LineShape(1.0, 1.0, skew), NOW)
    assert ladder(targets, Side.SELL) == [Decimal("2.5080"), Decimal("2.5080"), Decimal("2.5100")]


def test_orders_carry_the_lines_refresh_rules() -> None:
    line = passive(refresh_tolerance_bps=3, size_tolerance=0.1, min_order_age_s=5, timeout_s=90)
    target = line.quote(book(), 2.5, PLAIN, NOW)[0]
    assert (target.refresh_tolerance_bps, target.size_tolerance, target.min_age_s, target.max_age_s) == (
        3.0,
        0.1,
        5.0,
        90.0,
    )
    assert target.line_id == "pas1"
    assert target.venue == "alpha"


def test_a_pricing_models_depths_replace_the_static_spread() -> None:
    # bid 0.005 below the mid (20 bps), ask 0.003 above (12 bps); the inventory lean is in the model
    model = ModelQuote(mid=2.5, reservation_price=2.499, bid_depth=0.005, ask_depth=0.003)
    skew = InventorySkew.from_coefficient(0.5, skew=1.0, size_skew=1.0)
    targets = passive(levels=2).quote(book(), 2.5, LineShape(1.0, 1.0, skew), NOW, model=model)
    assert ladder(targets, Side.BUY) == [Decimal("2.4950"), Decimal("2.4925")]
    assert ladder(targets, Side.SELL) == [Decimal("2.5030"), Decimal("2.5055")]
    # bounds still hold: a depth through the mid is clamped to min_spread_bps (10)
    through = ModelQuote(mid=2.5, reservation_price=2.49, bid_depth=-0.001, ask_depth=math.inf)
    targets = passive(levels=1).quote(book(), 2.5, PLAIN, NOW, model=through)
    assert ladder(targets, Side.BUY) == [Decimal("2.4975")]
    assert ladder(targets, Side.SELL) == []  # infinite depth: the model does not offer
