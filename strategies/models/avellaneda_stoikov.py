"""Avellaneda & Stoikov (2008), "High-frequency trading in a limit order book", Quant. Finance 8(3).

The dealer maximises E[−exp(−γ(X_T + q_T S_T))] with dS = σ dW and market orders arriving at
depth δ with intensity λ(δ) = A·exp(−k δ). Equation numbers are the paper's.

Finite horizon (§3.2, the asymptotic solution):

    r(s, q, t)      = s − q γ σ² (T − t)                          (29)
    δ^a + δ^b       = γ σ² (T − t) + (2/γ) ln(1 + γ/k)             (30)

and the quotes sit symmetrically around r, so δ^b = s − r + spread/2, δ^a = r − s + spread/2.

Infinite horizon (§2.4): with ω = ½ γ² σ² (q_max + 1)², the indifference prices are

    r̄^a(s, q) = s + (1/γ) ln(1 + (1 − 2q) γ² σ² / (2ω − γ² (q − 1)² σ²))   [paper: q² below]
    r̄^b(s, q) = s + (1/γ) ln(1 + (−1 − 2q) γ² σ² / (2ω − γ² q² σ²))

and, for exponential arrivals, the optimal distances are (§3.1)

    δ^a = r^a − s + (1/γ) ln(1 + γ/k),    δ^b = s − r^b + (1/γ) ln(1 + γ/k).

The functions take floats or numpy arrays (the Monte Carlo runs them across all paths at once).
Units: see ``strategies/models/base.py`` (price units, seconds, inventory in lots).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from strategies.models.base import AvellanedaStoikovConfig, ModelQuote

FloatOrArray = TypeVar("FloatOrArray", float, npt.NDArray[np.float64])


def reservation_price(
    mid: FloatOrArray, q: FloatOrArray, gamma: float, sigma: float, tau: float
) -> FloatOrArray:
    """Eq. (29): r = s − q γ σ² (T − t); ``tau`` is T − t in seconds, ``q`` in lots."""
    return mid - q * gamma * sigma**2 * tau


def optimal_spread(gamma: float, sigma: float, tau: FloatOrArray, k: float) -> FloatOrArray:
    """Eq. (30): δ^a + δ^b = γ σ² (T − t) + (2/γ) ln(1 + γ/k), in price units."""
    return gamma * sigma**2 * tau + (2.0 / gamma) * math.log1p(gamma / k)


def finite_horizon_depths(
    q: FloatOrArray, gamma: float, sigma: float, tau: float, k: float
) -> tuple[FloatOrArray, FloatOrArray]:
    """(bid depth, ask depth) from the mid: quotes at r ∓ spread/2 with r from (29), spread (30)."""
    skew = q * gamma * sigma**2 * tau  # s − r
    half = optimal_spread(gamma, sigma, tau, k) / 2.0
    return skew + half, half - skew


def infinite_horizon_depths(
    q: float, gamma: float, sigma: float, k: float, q_max: float
) -> tuple[float, float]:
    """(bid depth, ask depth) of §2.4; a side whose indifference price does not exist is inf.

    Computed from the §2.4 value function v̄(x, s, q) = −e^(−γ(x + qs)) / D(q) with
    D(q) = ω − γ²σ²q²/2: r̄^b = s + (1/γ) ln(D(q+1)/D(q)) and r̄^a = s + (1/γ) ln(D(q)/D(q−1)).
    The bid is the paper's formula exactly; for the ask the paper prints the denominator
    2ω − γ²q²σ² where solving v̄(x + r̄^a, s, q − 1) = v̄(x, s, q) gives 2ω − γ²(q−1)²σ² (the two
    agree to first order); we use the solution, which keeps the quotes symmetric at q = 0.
    At q = q_max, D(q+1) = 0: the dealer stops buying (and stops selling at q = −q_max).
    """
    half_g2s2 = 0.5 * gamma**2 * sigma**2
    omega = half_g2s2 * (q_max + 1.0) ** 2

    def d(n: float) -> float:
        return omega - half_g2s2 * n**2

    arrival_term = math.log1p(gamma / k) / gamma
    floor = 1e-12 * omega  # D this small is zero up to rounding: the bound is reached
    if d(q) <= floor:  # |q| ≥ q_max + 1: outside the model; quote only the reducing side
        return (math.inf, arrival_term) if q > 0 else (arrival_term, math.inf)
    bid_depth = math.log(d(q) / d(q + 1.0)) / gamma + arrival_term if d(q + 1.0) > floor else math.inf
    ask_depth = math.log(d(q) / d(q - 1.0)) / gamma + arrival_term if d(q - 1.0) > floor else math.inf
    return bid_depth, ask_depth


def seconds_to_session_end(config: AvellanedaStoikovConfig, now: float) -> float:
    """T − t for ``horizon=session``: seconds from ``now`` (epoch) to the next session end (UTC)."""
    assert config.session_end_utc is not None  # the config validator guarantees it
    current = datetime.fromtimestamp(now, tz=UTC)
    end = datetime.combine(current.date(), config.session_end_utc, tzinfo=UTC)
    if end <= current:
        end += timedelta(days=1)
    return (end - current).total_seconds()


def quote(
    config: AvellanedaStoikovConfig, mid: float, inventory: float, sigma: float, k: float, now: float
) -> ModelQuote:
    """The A–S quote for ``inventory`` (base units) at ``now`` with calibrated ``sigma`` and ``k``."""
    q = inventory / config.lot_size
    if config.horizon == "infinite":
        assert config.q_max is not None
        bid_depth, ask_depth = infinite_horizon_depths(q, config.gamma, sigma, k, config.q_max)
        centre = _centre(mid, bid_depth, ask_depth, math.log1p(config.gamma / k) / config.gamma)
        return ModelQuote(mid, centre, bid_depth, ask_depth)
    if config.horizon == "session":
        tau = seconds_to_session_end(config, now)
    else:
        assert config.horizon_s is not None
        tau = config.horizon_s
    bid_depth, ask_depth = finite_horizon_depths(q, config.gamma, sigma, tau, k)
    return ModelQuote(mid, reservation_price(mid, q, config.gamma, sigma, tau), bid_depth, ask_depth)


def _centre(mid: float, bid_depth: float, ask_depth: float, arrival_term: float) -> float:
    """Reservation price: the centre of the quotes, or the remaining side's indifference price."""
    if math.isinf(bid_depth):
        return mid + ask_depth - arrival_term  # r^a
    if math.isinf(ask_depth):
        return mid - bid_depth + arrival_term  # r^b
    return mid + (ask_depth - bid_depth) / 2.0
