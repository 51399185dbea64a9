"""Avellaneda–Stoikov (2008) against values derived independently from the paper's value functions.

The finite-horizon (frozen inventory, §2.3) and infinite-horizon (§2.4) value functions have closed
forms; the tests solve the indifference-price definitions v(x − r^b, s, q + 1) = v(x, s, q) with
a root finder and the dealer's one-step optimisation sup_δ λ(δ)(1 − e^(−γ(δ − c)))/γ with a scalar
optimiser, then compare with the module's formulas.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time

import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

from strategies.models import avellaneda_stoikov as a_s
from strategies.models.base import AvellanedaStoikovConfig

GAMMA, SIGMA, K = 0.1, 2.0, 1.5


def numeric_depth(offset: float, gamma: float, k: float) -> float:
    """argmax_δ A e^(−kδ)(1 − e^(−γ(δ − offset)))/γ, found numerically (A drops out)."""
    result = minimize_scalar(
        lambda d: -math.exp(-k * d) * (1.0 - math.exp(-gamma * (d - offset))) / gamma,
        bounds=(offset, offset + 50.0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(result.x)


def frozen_value(x: float, s: float, q: float, tau: float) -> float:
    """§2.3: v(x, s, q, t) = −exp(−γx) exp(−γqs) exp(γ²σ²q²(T − t)/2)."""
    return -math.exp(-GAMMA * x) * math.exp(-GAMMA * q * s) * math.exp(GAMMA**2 * SIGMA**2 * q**2 * tau / 2)


def test_finite_horizon_matches_indifference_prices_and_optimal_arrival_term() -> None:
    s, tau = 100.0, 0.4
    for q in (-3.0, 0.0, 2.0):
        # Indifference bid: v(x − r^b, s, q + 1, t) = v(x, s, q, t); likewise the ask with q − 1.
        here = frozen_value(0.0, s, q, tau)
        r_bid = brentq(lambda r, q=q, here=here: frozen_value(-r, s, q + 1, tau) - here, 80, 120)
        r_ask = brentq(lambda r, q=q, here=here: frozen_value(r, s, q - 1, tau) - here, 80, 120)
        expected_bid = numeric_depth(s - r_bid, GAMMA, K)
        expected_ask = numeric_depth(r_ask - s, GAMMA, K)
        bid_depth, ask_depth = a_s.finite_horizon_depths(q, GAMMA, SIGMA, tau, K)
        assert bid_depth == pytest.approx(expected_bid, abs=1e-6)
        assert ask_depth == pytest.approx(expected_ask, abs=1e-6)
        assert a_s.reservation_price(s, q, GAMMA, SIGMA, tau) == pytest.approx((r_bid + r_ask) / 2, abs=1e-9)


def test_eq_29_and_30_by_hand() -> None:
    # r = 100 − 2·0.1·4·0.5 = 99.6; spread = 0.1·4·0.5 + 20·ln(16/15) = 0.2 + 1.2907704...
    assert a_s.reservation_price(100.0, 2.0, 0.1, 2.0, 0.5) == pytest.approx(99.6)
    assert a_s.optimal_spread(0.1, 2.0, 0.5, 1.5) == pytest.approx(0.2 + 20 * 0.0645385211375712)


def test_spread_does_not_vanish_at_zero_inventory_or_at_the_horizon() -> None:
    bid, ask = a_s.finite_horizon_depths(0.0, GAMMA, SIGMA, 0.0, K)
    assert bid == ask == pytest.approx(math.log(1 + GAMMA / K) / GAMMA)
    assert bid > 0.6


def test_long_inventory_lowers_both_quotes() -> None:
    flat_bid, flat_ask = a_s.finite_horizon_depths(0.0, GAMMA, SIGMA, 0.5, K)
    long_bid, long_ask = a_s.finite_horizon_depths(5.0, GAMMA, SIGMA, 0.5, K)
    assert long_bid > flat_bid and long_ask < flat_ask
    assert long_bid + long_ask == pytest.approx(flat_bid + flat_ask)


def test_vectorised_over_paths_equals_scalar() -> None:
    q = np.array([-2.0, 0.0, 3.0])
    bids, asks = a_s.finite_horizon_depths(q, GAMMA, SIGMA, 0.3, K)
    for i, qi in enumerate(q):
        assert (bids[i], asks[i]) == pytest.approx(a_s.finite_horizon_depths(float(qi), GAMMA, SIGMA, 0.3, K))


def test_infinite_horizon_matches_discounted_value_function() -> None:
    q_max = 5.0
    omega = 0.5 * GAMMA**2 * SIGMA**2 * (q_max + 1) ** 2

    def value(x: float, s: float, q: float) -> float:
        # §2.4: v̄ = E ∫ −e^(−ωt) e^(−γ(x + q S_t)) dt = −e^(−γ(x + qs)) / (ω − γ²σ²q²/2)
        return -math.exp(-GAMMA * (x + q * s)) / (omega - 0.5 * GAMMA**2 * SIGMA**2 * q**2)

    s = 50.0
    for q in (-4.0, -1.0, 0.0, 2.0, 4.0):
        here = value(0.0, s, q)
        r_bid = brentq(lambda r, q=q, here=here: value(-r, s, q + 1) - here, 0, 100)
        r_ask = brentq(lambda r, q=q, here=here: value(r, s, q - 1) - here, 0, 100)
        bid, ask = a_s.infinite_horizon_depths(q, GAMMA, SIGMA, K, q_max)
        assert bid == pytest.approx(numeric_depth(s - r_bid, GAMMA, K), abs=1e-6)
        assert ask == pytest.approx(numeric_depth(r_ask - s, GAMMA, K), abs=1e-6)


def test_infinite_horizon_stops_buying_at_the_inventory_bound() -> None:
    bid, ask = a_s.infinite_horizon_depths(5.0, GAMMA, SIGMA, K, 5.0)
    assert math.isinf(bid) and math.isfinite(ask)
    bid, ask = a_s.infinite_horizon_depths(-5.0, GAMMA, SIGMA, K, 5.0)
    assert math.isfinite(bid) and math.isinf(ask)


def test_session_horizon_counts_down_to_the_configured_utc_time() -> None:
    config = AvellanedaStoikovConfig(gamma=0.1, horizon="session", session_end_utc=time(16, 0))
    now = datetime(2026, 1, 5, 15, 0, tzinfo=UTC).timestamp()
    assert a_s.seconds_to_session_end(config, now) == pytest.approx(3600.0)
    after_close = datetime(2026, 1, 5, 17, 0, tzinfo=UTC).timestamp()
    assert a_s.seconds_to_session_end(config, after_close) == pytest.approx(23 * 3600.0)
    quote = a_s.quote(config, 10.0, 2.0, 0.001, 1.5, now)
    assert quote.reservation_price == pytest.approx(10.0 - 2 * 0.1 * 0.001**2 * 3600)


def test_inventory_is_counted_in_lots() -> None:
    config = AvellanedaStoikovConfig(gamma=0.1, horizon="rolling", horizon_s=60.0, lot_size=50.0)
    by_lots = a_s.quote(config, 10.0, 100.0, 0.01, 2.0, 0.0)  # 100 base units = 2 lots
    one_lot_config = config.model_copy(update={"lot_size": 1.0})
    assert by_lots == a_s.quote(one_lot_config, 10.0, 2.0, 0.01, 2.0, 0.0)


def test_infinite_horizon_quotes_are_symmetric_when_flat() -> None:
    bid, ask = a_s.infinite_horizon_depths(0.0, GAMMA, SIGMA, K, 5.0)
    assert bid == pytest.approx(ask, rel=1e-12)
    long_bid, long_ask = a_s.infinite_horizon_depths(2.0, GAMMA, SIGMA, K, 5.0)
    short_bid, short_ask = a_s.infinite_horizon_depths(-2.0, GAMMA, SIGMA, K, 5.0)
    assert (long_bid, long_ask) == pytest.approx((short_ask, short_bid), rel=1e-12)


def test_at_the_bound_the_reservation_price_is_the_remaining_sides_indifference_price() -> None:
    config = AvellanedaStoikovConfig(gamma=GAMMA, horizon="infinite", q_max=5)
    quote = a_s.quote(config, 100.0, 5.0, SIGMA, K, 0.0)
    assert quote.bid_price is None
    assert quote.reservation_price == pytest.approx(quote.ask_depth + 100.0 - math.log1p(GAMMA / K) / GAMMA)
    assert quote.reservation_price < 100.0
