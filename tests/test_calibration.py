"""Calibration: on a simulated market with known σ, A and k, the estimators recover them within 10%."""

from __future__ import annotations

import math
import random

import pytest

from strategies.calibration import (
    CalibrationConfig,
    Calibrator,
    EwmaVolatility,
    IntensityEstimator,
    RollingVolatility,
)
from strategies.types import Side, Trade

SIGMA = 0.0005  # price units per sqrt(second)
A = 2.0  # market orders per second per side
K = 400.0  # per price unit: mean depth 1/k = 0.0025 (25 ticks of 0.0001)


def simulated_market(calibrator: Calibrator, seconds: float, seed: int) -> None:
    """Mid: Gaussian steps every 100 ms. Market orders: Poisson at rate A per side, depth ~ Exp(k),
    so the rate of orders reaching depth ≥ δ is A e^(−kδ). A third of them sweep two levels
    (two prints with one timestamp), which must count as one order at its deepest print.
    """
    rng = random.Random(seed)
    dt = 0.1
    t0, mid = 1_700_000_000.0, 1.0
    next_order = {side: t0 + rng.expovariate(A) for side in Side}
    trade_id = 0
    for step in range(int(seconds / dt)):
        now = t0 + step * dt
        for side in Side:
            while next_order[side] <= now + dt:
                ts = next_order[side]
                depth = rng.expovariate(K)
                sign = side.sign
                prints = [depth] if rng.random() > 1 / 3 else [depth * 0.4, depth]
                for d in prints:
                    trade_id += 1
                    calibrator.on_trade(Trade("alpha", "BERA/USDT", mid + sign * d, 1.0, side, ts, trade_id))
                next_order[side] = ts + rng.expovariate(A)
        mid += rng.gauss(0.0, SIGMA * math.sqrt(dt))
        calibrator.on_mid(mid, now + dt)


@pytest.mark.parametrize("volatility", ["ewma", "rolling"])
def test_estimators_recover_known_sigma_a_and_k_after_five_minutes(volatility: str) -> None:
    config = CalibrationConfig(
        volatility=volatility,  # type: ignore[arg-type]
        vol_half_life_s=120.0,
        vol_window_s=300.0,
        intensity_window_s=300.0,
        depth_step=0.0001,
    )
    calibrator = Calibrator(config)
    simulated_market(calibrator, 300.0, seed=7)
    state = calibrator.state(1_700_000_000.0 + 300.0)
    assert state.ready, state.reason
    assert state.reason == ""
    assert abs(state.sigma / SIGMA - 1) < 0.10
    assert abs(state.A / A - 1) < 0.10
    assert abs(state.k / K - 1) < 0.10
    assert state.sigma_bps == pytest.approx(1e4 * state.sigma / (state.mid or 1.0))


def test_before_enough_data_the_state_says_what_is_missing() -> None:
    calibrator = Calibrator(CalibrationConfig(depth_step=0.0001, min_orders=50, vol_min_samples=30))
    simulated_market(calibrator, 2.0, seed=1)
    state = calibrator.state(1_700_000_002.0)
    assert not state.ready
    assert "volatility: 19 mid changes, need 30" in state.reason
    assert "need 50" in state.reason


def test_sweeping_order_counts_once_at_its_deepest_print() -> None:
    estimator = IntensityEstimator(window_s=60.0, depth_step=0.01, min_orders=1, min_count_per_depth=1)
    estimator.start(0.0)
    estimator.on_market_order(10.02, Side.BUY, 5.0, mid=10.0)
    estimator.on_market_order(10.05, Side.BUY, 5.0, mid=10.0)  # same order, next level
    estimator.on_market_order(9.97, Side.SELL, 5.0, mid=10.0)  # another order
    estimator.on_market_order(10.03, Side.SELL, 6.0, mid=10.0)  # through the mid: stale mid, ignored
    assert list(estimator._arrivals) == [(5.0, pytest.approx(0.05)), (5.0, pytest.approx(0.03))]


def test_volatility_estimators_agree_with_direct_formula_on_a_short_series() -> None:
    mids = [(0.0, 10.0), (1.0, 10.1), (3.0, 9.9), (3.5, 10.0)]
    rolling = RollingVolatility(window_s=100.0, min_samples=3)
    ewma = EwmaVolatility(half_life_s=1e9, min_samples=3)  # no decay: the plain ratio
    for ts, mid in mids:
        rolling.update(mid, ts)
        ewma.update(mid, ts)
    expected = math.sqrt((0.1**2 + 0.2**2 + 0.1**2) / 3.5)
    assert rolling.sigma == pytest.approx(expected)
    assert ewma.sigma == pytest.approx(expected)


def test_rolling_window_forgets_old_changes() -> None:
    rolling = RollingVolatility(window_s=10.0, min_samples=1)
    rolling.update(10.0, 0.0)
    rolling.update(11.0, 1.0)  # a big move, soon out of the window
    for i in range(2, 40):
        rolling.update(11.0 + 0.01 * (i % 2), float(i))
    assert rolling.sigma == pytest.approx(0.01, rel=1e-6)
