"""Every outgoing price is on tick and every size on step, rounded in the safe direction."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from strategies.types import MarketRules, Side

# Ticks and steps as venues publish them: 1, 2, 5 or 25 times a power of ten.
_grids = st.builds(
    lambda mantissa, exponent: Decimal(mantissa).scaleb(exponent),
    st.sampled_from([1, 2, 5, 25]),
    st.integers(min_value=-8, max_value=2),
)
_decimal_values = st.decimals(
    min_value=Decimal("0.00000001"), max_value=Decimal("1000000"), allow_nan=False, places=10
)
_float_values = st.floats(min_value=1e-8, max_value=1e6, allow_nan=False, allow_infinity=False)


def _rules(tick: Decimal, step: Decimal) -> MarketRules:
    return MarketRules(symbol="BERA/USDT", tick=tick, step=step)


@settings(max_examples=400, deadline=None)
@given(tick=_grids, value=_decimal_values, side=st.sampled_from(list(Side)))
def test_decimal_price_lands_on_tick_and_never_on_the_unsafe_side(
    tick: Decimal, value: Decimal, side: Side
) -> None:
    rounded = _rules(tick, Decimal(1)).round_price(value, side)
    assert rounded % tick == 0
    if side is Side.BUY:
        assert rounded <= value  # a bid never rounds up
        assert value - rounded < tick
    else:
        assert rounded >= value  # an ask never rounds down
        assert rounded - value < tick


@settings(max_examples=400, deadline=None)
@given(tick=_grids, value=_float_values, side=st.sampled_from(list(Side)))
def test_float_price_lands_on_tick_and_never_on_the_unsafe_side(
    tick: Decimal, value: float, side: Side
) -> None:
    exact = Decimal(repr(value))
    # Prices of 1e-10..1e10 ticks: past that a float cannot tell neighbouring ticks apart.
    assume(Decimal("1e-10") < exact / tick < Decimal("1e10"))
    rounded = _rules(tick, Decimal(1)).round_price(value, side)
    assert rounded % tick == 0
    # A float within a few ulps of a grid point may snap to it (0.1234 + 0.0001 is 0.1235).
    slack = Decimal(math.ulp(value)) * 4
    if side is Side.BUY:
        assert rounded <= exact + slack
    else:
        assert rounded >= exact - slack
    assert abs(rounded - exact) < tick + slack


def test_float_ask_far_from_its_tick_scale_is_not_rounded_down() -> None:
    rules = _rules(Decimal("0.00000001"), Decimal(1))
    assert rules.round_price(123456.123456785, Side.SELL) >= Decimal("123456.123456785")


def test_float_bid_is_not_rounded_up_by_more_than_float_error() -> None:
    rules = _rules(Decimal("0.01"), Decimal(1))
    value = 663400.2199993366
    assert rules.round_price(value, Side.BUY) <= Decimal(repr(value)) + Decimal(math.ulp(value)) * 4


@settings(max_examples=400, deadline=None)
@given(step=_grids, value=_decimal_values)
def test_size_lands_on_step_and_never_rounds_up(step: Decimal, value: Decimal) -> None:
    rounded = _rules(Decimal("0.01"), step).round_size(value)
    assert rounded % step == 0
    assert rounded <= value
    assert value - rounded < step


@settings(max_examples=300, deadline=None)
@given(
    tick=_grids, step=_grids, price=_decimal_values, size=_decimal_values, side=st.sampled_from(list(Side))
)
def test_rounded_order_passes_the_grid_checks_of_violation(
    tick: Decimal, step: Decimal, price: Decimal, size: Decimal, side: Side
) -> None:
    rules = _rules(tick, step)
    p, q = rules.round_price(price, side), rules.round_size(size)
    why = rules.violation(p, q)
    # Whatever is still wrong is a limit (non-positive after rounding), never off-grid.
    assert why is None or "not on" not in why


def test_float_sum_that_lands_on_a_tick_is_not_pushed_a_tick_away() -> None:
    rules = _rules(Decimal("0.0001"), Decimal("0.1"))
    assert rules.round_price(0.1234 + 0.0001, Side.BUY) == Decimal("0.1235")
    assert rules.round_price(0.1234 + 0.0001, Side.SELL) == Decimal("0.1235")


def test_violation_names_the_limit_an_order_breaks() -> None:
    rules = MarketRules("BERA/USDT", Decimal("0.001"), Decimal("0.1"), Decimal("1"), Decimal("5"))
    assert rules.violation(Decimal("2.0005"), Decimal("3")) is not None
    assert "step" in (rules.violation(Decimal("2.000"), Decimal("3.05")) or "")
    assert "min qty" in (rules.violation(Decimal("2.000"), Decimal("0.5")) or "")
    assert "notional" in (rules.violation(Decimal("2.000"), Decimal("2")) or "")
    assert rules.violation(Decimal("2.000"), Decimal("3")) is None
