"""GLFT: the matrix-exponential solution against a brute-force HJB integration, and the closed-form
approximation against the exact solution where the asymptotics hold (long horizon, small γ, |q| ≪ Q).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from strategies.models import glft
from strategies.models.base import GlftConfig
from strategies.models.cartea_jaimungal import depth_table as cjp_depth_table

FloatArray = npt.NDArray[np.float64]


def golden_argmax(f, lo: FloatArray, hi: FloatArray, iterations: int = 36) -> FloatArray:  # type: ignore[no-untyped-def]
    """Vectorised golden-section search for the maximum of a unimodal f on [lo, hi]."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo.copy(), hi.copy()
    for _ in range(iterations):
        c = b - ratio * (b - a)
        d = a + ratio * (b - a)
        left_better = f(c) > f(d)
        b = np.where(left_better, d, b)
        a = np.where(left_better, a, c)
    return (a + b) / 2.0


def brute_force_cara_depths(
    gamma: float, sigma: float, A: float, k: float, q_max: int, horizon: float, dt: float
) -> tuple[FloatArray, FloatArray]:
    """Euler integration, backward from θ(T) = 0, of GLFT's HJB for u = −e^(−γ(x + qs + θ_q(t))):

    0 = θ_q' − ½γσ²q² + sup_δ (A e^(−kδ)/γ)(1 − e^(−γ(δ + θ_(q+1) − θ_q))) [q < Q]
                       + sup_δ (A e^(−kδ)/γ)(1 − e^(−γ(δ + θ_(q−1) − θ_q))) [q > −Q],
    with each sup found numerically (no closed form used).
    """
    q = np.arange(-q_max, q_max + 1, dtype=np.float64)
    theta = np.zeros_like(q)
    lo, hi = np.full(len(q) - 1, -20.0), np.full(len(q) - 1, 20.0)
    bid = ask = np.full(len(q) - 1, np.nan)
    for _ in range(round(horizon / dt)):
        up = theta[1:] - theta[:-1]  # θ_(q+1) − θ_q for q < Q: buying moves q up
        down = theta[:-1] - theta[1:]  # θ_(q−1) − θ_q for q > −Q (indexed from q = −Q + 1)

        def gain(delta: FloatArray, jump: FloatArray) -> FloatArray:
            return A * np.exp(-k * delta) * (1.0 - np.exp(-gamma * (delta + jump))) / gamma

        bid = golden_argmax(lambda d, j=up: gain(d, j), lo, hi)  # type: ignore[misc]
        ask = golden_argmax(lambda d, j=down: gain(d, j), lo, hi)  # type: ignore[misc]
        rate = -0.5 * gamma * sigma**2 * q**2
        rate[:-1] += gain(bid, up)
        rate[1:] += gain(ask, down)
        theta = theta + dt * rate
    bids = np.append(bid, np.inf)
    asks = np.insert(ask, 0, np.inf)
    return bids, asks


def test_matrix_exponential_solution_matches_brute_force_hjb() -> None:
    gamma, sigma, A, k, q_max, horizon = 0.3, 0.8, 1.0, 1.5, 4, 3.0
    expected_bid, expected_ask = brute_force_cara_depths(gamma, sigma, A, k, q_max, horizon, dt=0.005)
    bid, ask = glft.exact_depth_table(gamma, gamma, sigma, A, k, q_max, horizon)
    np.testing.assert_allclose(bid[:-1], expected_bid[:-1], atol=3e-3)
    np.testing.assert_allclose(ask[1:], expected_ask[1:], atol=3e-3)
    assert math.isinf(bid[-1]) and math.isinf(ask[0])  # no bid at +Q, no ask at −Q


def test_closed_form_coefficients_by_hand() -> None:
    gamma, A, k = 0.1, 2.0, 0.5
    c1, c2 = glft.coefficients(gamma, gamma, A, k)
    assert c1 == pytest.approx(10.0 * math.log(1.2))
    assert c2 == pytest.approx(math.sqrt(0.1 / (2 * 2.0 * 0.5) * 1.2 ** (5.0 + 1.0)))
    # hftbacktest's form: half spread c1 + σc2/2 around the reservation price s − σc2·q
    sigma, q = 0.4, 3.0
    bid, ask = glft.approx_depths(q, gamma, gamma, sigma, A, k)
    half_spread, skew = c1 + 0.5 * sigma * c2, sigma * c2
    assert (bid, ask) == pytest.approx((half_spread + skew * q, half_spread - skew * q))


def test_risk_neutral_limit_of_the_closed_form() -> None:
    c1, c2 = glft.coefficients(0.2, 0.0, 3.0, 2.0)
    assert c1 == pytest.approx(0.5)
    assert c2 == pytest.approx(math.sqrt(0.2 * math.e / (2 * 3.0 * 2.0)))
    assert glft.coefficients(0.2, 1e-9, 3.0, 2.0) == pytest.approx((c1, c2), rel=1e-6)


@pytest.mark.parametrize("xi_equals_gamma", [True, False])
def test_approximation_agrees_with_exact_solution_far_from_horizon_and_bound(xi_equals_gamma: bool) -> None:
    gamma, sigma, A, k, q_max = 0.01, 0.5, 2.0, 1.0, 40
    xi = gamma if xi_equals_gamma else 0.0
    stationary_bid, stationary_ask = glft.exact_depth_table(gamma, xi, sigma, A, k, q_max, None)
    long_bid, long_ask = glft.exact_depth_table(gamma, xi, sigma, A, k, q_max, 50_000.0)
    for q in range(-5, 6):
        approx_bid, approx_ask = glft.approx_depths(q, gamma, xi, sigma, A, k)
        i = q + q_max
        assert stationary_bid[i] == pytest.approx(approx_bid, rel=0.01)
        assert stationary_ask[i] == pytest.approx(approx_ask, rel=0.01)
        assert long_bid[i] == pytest.approx(stationary_bid[i], rel=1e-6)
        assert long_ask[i] == pytest.approx(stationary_ask[i], rel=1e-6)


def test_approximation_departs_from_exact_near_the_horizon() -> None:
    gamma, sigma, A, k, q_max = 0.01, 0.5, 2.0, 1.0, 40
    bid, _ = glft.exact_depth_table(gamma, gamma, sigma, A, k, q_max, 1.0)
    approx_bid, _ = glft.approx_depths(5, gamma, gamma, sigma, A, k)
    # One second before the end the inventory skew has not built up: depths stay near c1.
    assert abs(bid[q_max + 5] - approx_bid) > 0.1


def test_time_grid_tables_match_single_horizon_solutions() -> None:
    gamma, sigma, A, k, q_max = 0.1, 0.6, 1.5, 1.2, 6
    taus = np.linspace(0.0, 4.0, 81)
    bids, asks = glft.exact_depth_tables(gamma, gamma, sigma, A, k, q_max, taus)
    for i in (1, 40, 80):
        bid, ask = glft.exact_depth_table(gamma, gamma, sigma, A, k, q_max, float(taus[i]))
        np.testing.assert_allclose(bids[i], bid, rtol=1e-9)
        np.testing.assert_allclose(asks[i], ask, rtol=1e-9)


def test_risk_neutral_glft_is_cjp_with_running_penalty_half_gamma_sigma_squared() -> None:
    gamma, sigma, A, k, q_max, horizon = 0.2, 0.7, 1.3, 1.1, 5, 2.5
    bid, ask = glft.exact_depth_table(gamma, 0.0, sigma, A, k, q_max, horizon)
    cjp_bid, cjp_ask = cjp_depth_table(0.5 * gamma * sigma**2, 0.0, k, A, -q_max, q_max, horizon)
    np.testing.assert_allclose(bid, cjp_bid, rtol=1e-9)
    np.testing.assert_allclose(ask, cjp_ask, rtol=1e-9)


def test_exact_quote_uses_whole_lots_and_stops_at_the_bound() -> None:
    config = GlftConfig(gamma=0.1, method="exact", q_max=3, horizon_s=10.0, lot_size=2.0)
    at_bound = glft.quote(config, 100.0, 6.0, 0.5, 1.0, 1.0)  # 3 lots = Q
    assert at_bound.bid_price is None and at_bound.ask_price is not None
    partial = glft.quote(config, 100.0, 3.0, 0.5, 1.0, 1.0)  # 1.5 lots: priced as 1 lot
    assert partial == glft.quote(config, 100.0, 2.0, 0.5, 1.0, 1.0)
