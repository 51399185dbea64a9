"""Quote sizing, refresh timing and aggressiveness (seed 002, done sensibly)."""

from __future__ import annotations

import pytest

from strategies.sizing import QuoteManagementConfig, aggressiveness, quote_sizes, refresh_interval, spread_for
from strategies.types import Side


def test_size_shrinks_on_the_growing_side_toward_the_limit() -> None:
    assert quote_sizes(10.0, 0.0, 100.0) == (10.0, 10.0)
    assert quote_sizes(10.0, 50.0, 100.0) == pytest.approx((5.0, 10.0))
    assert quote_sizes(10.0, -75.0, 100.0) == pytest.approx((10.0, 2.5))
    assert quote_sizes(10.0, 100.0, 100.0) == (0.0, 10.0)


def test_size_never_exceeds_the_room_left_and_drops_below_minimum() -> None:
    bid, _ = quote_sizes(10.0, 97.0, 100.0, shrink="exponential", eta=0.1)
    assert bid == pytest.approx(3.0)  # e^(−0.097)·10 ≈ 9.1, capped by the 3 units of room
    assert quote_sizes(10.0, 95.0, 100.0, min_size=1.0)[0] == 0.0  # 0.5 < min size


def test_refresh_quickens_with_volatility_within_bounds() -> None:
    assert refresh_interval(0.0, 2.0, 0.5, 10.0) == 10.0
    assert refresh_interval(2.0, 2.0, 0.5, 10.0) == 5.0
    assert refresh_interval(1000.0, 2.0, 0.5, 10.0) == 0.5
    assert refresh_interval(1.0, 2.0, 0.5, 10.0) > refresh_interval(3.0, 2.0, 0.5, 10.0)


def test_aggressiveness_favours_the_side_that_reduces_inventory_and_volatility_tempers_it() -> None:
    assert aggressiveness(Side.BUY, 0.0, 100.0, 0.0, 1.0) == 0.5
    assert aggressiveness(Side.SELL, 80.0, 100.0, 0.0, 1.0) == pytest.approx(0.9)
    assert aggressiveness(Side.BUY, 80.0, 100.0, 0.0, 1.0) == pytest.approx(0.1)
    assert aggressiveness(Side.SELL, 80.0, 100.0, 1.0, 1.0) == pytest.approx(0.45)
    assert spread_for(1.0, 5.0, 20.0) == 5.0 and spread_for(0.0, 5.0, 20.0) == 20.0


def test_config_rejects_inverted_refresh_bounds() -> None:
    with pytest.raises(ValueError, match="min_refresh_s"):
        QuoteManagementConfig(
            base_size=1, max_position=10, reference_sigma=1, min_refresh_s=5, max_refresh_s=1
        )
