"""Cartea–Jaimungal–Penalva ch. 10: the matrix-exponential depths against a brute-force integration
of the nonlinear HJB for h(t, q), with numerically found optimal depths.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from strategies.models import cartea_jaimungal as cjp
from strategies.models.base import CarteaJaimungalConfig

FloatArray = npt.NDArray[np.float64]


def golden_argmax(f, lo: FloatArray, hi: FloatArray, iterations: int = 36) -> FloatArray:  # type: ignore[no-untyped-def]
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo.copy(), hi.copy()
    for _ in range(iterations):
        c = b - ratio * (b - a)
        d = a + ratio * (b - a)
        left_better = f(c) > f(d)
        b = np.where(left_better, d, b)
        a = np.where(left_better, a, c)
    return (a + b) / 2.0


def brute_force_depths(
    phi: float,
    alpha: float,
    kappa: float,
    lam: float,
    q_max: int,
    horizon: float,
    dt: float,
    eps: float = 0.0,
    drift: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Euler, backward from h(T, q) = −αq², on the HJB of H = x + qS + h(t, q):

    0 = ∂t h + μq − φq² + λ sup_δ e^(−κδ)(δ − ε + h(q−1) − h(q)) [q > q_min]
                         + λ sup_δ e^(−κδ)(δ − ε + h(q+1) − h(q)) [q < q_max]
    (market orders move the mid ε their way; with equal rates the q·ε terms cancel).
    """
    q = np.arange(-q_max, q_max + 1, dtype=np.float64)
    h = -alpha * q**2
    lo, hi = np.full(len(q) - 1, -30.0), np.full(len(q) - 1, 30.0)
    bid = ask = lo
    for _ in range(round(horizon / dt)):
        up = h[1:] - h[:-1]  # h(q+1) − h(q) for q < q_max
        down = h[:-1] - h[1:]  # h(q−1) − h(q) for q > q_min

        def gain(delta: FloatArray, jump: FloatArray) -> FloatArray:
            return lam * np.exp(-kappa * delta) * (delta - eps + jump)

        bid = golden_argmax(lambda d, j=up: gain(d, j), lo, hi)  # type: ignore[misc]
        ask = golden_argmax(lambda d, j=down: gain(d, j), lo, hi)  # type: ignore[misc]
        rate = drift * q - phi * q**2
        rate[:-1] += gain(bid, up)
        rate[1:] += gain(ask, down)
        h = h + dt * rate
    return np.append(bid, np.inf), np.insert(ask, 0, np.inf)


@pytest.mark.parametrize(
    ("eps", "drift"), [(0.0, 0.0), (0.05, 0.0), (0.0, 0.02)], ids=["plain", "adverse_selection", "drift"]
)
def test_matrix_exponential_depths_match_brute_force_hjb(eps: float, drift: float) -> None:
    phi, alpha, kappa, lam, q_max, horizon = 0.01, 0.05, 2.0, 1.5, 4, 3.0
    expected_bid, expected_ask = brute_force_depths(phi, alpha, kappa, lam, q_max, horizon, 0.005, eps, drift)
    bid, ask = cjp.depth_table(phi, alpha, kappa, lam, -q_max, q_max, horizon, eps, drift)
    np.testing.assert_allclose(bid[:-1], expected_bid[:-1], atol=3e-3)
    np.testing.assert_allclose(ask[1:], expected_ask[1:], atol=3e-3)
    assert math.isinf(bid[-1]) and math.isinf(ask[0])


def test_at_the_horizon_depths_are_the_terminal_penalty_plus_one_over_kappa() -> None:
    phi, alpha, kappa = 0.01, 0.05, 2.0
    bid, ask = cjp.depth_table(phi, alpha, kappa, 1.0, -3, 3, 1e-9)
    q = np.arange(-3, 4)
    # δ⁻(T, q) = 1/κ + h(T, q) − h(T, q + 1) with h(T, q) = −αq²
    np.testing.assert_allclose(bid[:-1], 1 / kappa + alpha * ((q[:-1] + 1) ** 2 - q[:-1] ** 2), atol=1e-6)
    np.testing.assert_allclose(ask[1:], 1 / kappa + alpha * ((q[1:] - 1) ** 2 - q[1:] ** 2), atol=1e-6)


def test_adverse_selection_widens_both_sides() -> None:
    base_bid, base_ask = cjp.depth_table(0.01, 0.05, 2.0, 1.5, -5, 5, 10.0)
    as_bid, as_ask = cjp.depth_table(0.01, 0.05, 2.0, 1.5, -5, 5, 10.0, 0.1)
    assert np.all(as_bid[:-1] > base_bid[:-1]) and np.all(as_ask[1:] > base_ask[1:])


def test_positive_drift_makes_the_flat_dealer_keener_to_buy() -> None:
    bid, ask = cjp.depth_table(0.01, 0.05, 2.0, 1.5, -5, 5, 10.0, 0.0, 0.05)
    assert bid[5] < ask[5]


def test_quote_clamps_inventory_to_bounds() -> None:
    config = CarteaJaimungalConfig(
        running_penalty=0.01, terminal_penalty=0.05, horizon_s=5.0, q_max=3, q_min=-2
    )
    long = cjp.quote(config, 10.0, 7.0, 1.5, 2.0)  # beyond q_max
    assert long.bid_price is None and long.ask_price is not None
    short = cjp.quote(config, 10.0, -2.0, 1.5, 2.0)  # at q_min
    assert short.ask_price is None and short.bid_price is not None
