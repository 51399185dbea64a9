"""Guéant, Lehalle & Fernandez-Tapia (2013), "Dealing with the inventory risk", Math. Fin. Econ. 7,
in the generalised form of Guéant (2017), "Optimal market making", Appl. Math. Finance 24(2).

Inventory q in lots (Δ = 1 lot), arrivals λ(δ) = A e^(−kδ), mid dS = σ dW, risk aversion γ and
the utility parameter ξ (ξ = γ: CARA, the GLFT 2013 model; ξ = 0: risk-adjusted expectation).

Closed-form approximation (Guéant 2017, the asymptotic quotes; the form hftbacktest uses):

    c1 = (1/(ξΔ)) ln(1 + ξΔ/k)
    c2 = sqrt( γ / (2 A Δ k) · (1 + ξΔ/k)^(k/(ξΔ) + 1) )
    δ^b(q) ≈ c1 + (2q + Δ)/2 · σ c2,     δ^a(q) ≈ c1 − (2q − Δ)/2 · σ c2

i.e. half spread c1 + (Δ/2) σ c2 around the reservation price s − σ c2 q.

Exact solution for |q| ≤ Q (GLFT 2013 Theorem 1, Guéant 2017 §3): with
α = (k/2) γ σ² and η = A (1 + ξ/k)^(−(1 + k/ξ)) (η = A/e for ξ = 0), let M be the tridiagonal
(2Q+1)×(2Q+1) matrix with M_qq = α q² and M_q,q±1 = −η. Then v(t) = exp(−M (T − t)) · 1 and

    δ^b(t, q) = (1/k) ln(v_q / v_(q+1)) + (1/ξ) ln(1 + ξ/k)     (no bid at q = Q)
    δ^a(t, q) = (1/k) ln(v_q / v_(q−1)) + (1/ξ) ln(1 + ξ/k)     (no ask at q = −Q)

As T − t → ∞, v is proportional to M's ground eigenvector: the stationary quotes, which the
approximation above describes when the eigenvector is smooth in q (α/η small) and |q| ≪ Q.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
import scipy.linalg

from strategies.models.base import GlftConfig, ModelQuote

FloatArray = npt.NDArray[np.float64]


def arrival_term(xi: float, k: float) -> float:
    """c1 = (1/ξ) ln(1 + ξ/k) per lot, with its ξ → 0 limit 1/k."""
    return math.log1p(xi / k) / xi if xi > 0.0 else 1.0 / k


def coefficients(gamma: float, xi: float, A: float, k: float) -> tuple[float, float]:
    """(c1, c2) of the closed-form approximation (Δ = 1 lot); multiply c2 by σ for price units."""
    # math.e is the limit of (1 + ξ/k)^(k/ξ + 1) as ξ → 0
    growth = (1.0 + xi / k) ** (k / xi + 1.0) if xi > 0.0 else math.e
    return arrival_term(xi, k), math.sqrt(gamma / (2.0 * A * k) * growth)


def approx_depths(q: float, gamma: float, xi: float, sigma: float, A: float, k: float) -> tuple[float, float]:
    """(bid depth, ask depth) of the closed-form approximation for inventory ``q`` lots."""
    c1, c2 = coefficients(gamma, xi, A, k)
    skew = sigma * c2
    return c1 + (2.0 * q + 1.0) / 2.0 * skew, c1 - (2.0 * q - 1.0) / 2.0 * skew


def _generator(gamma: float, xi: float, sigma: float, A: float, k: float, q_max: int) -> FloatArray:
    """The matrix M (rows q = −Q … Q)."""
    q = np.arange(-q_max, q_max + 1, dtype=np.float64)
    alpha = 0.5 * k * gamma * sigma**2
    eta = A * (1.0 + xi / k) ** (-(1.0 + k / xi)) if xi > 0.0 else A / math.e
    off = np.full(2 * q_max, -eta)
    return np.diag(alpha * q**2) + np.diag(off, 1) + np.diag(off, -1)


def _depths_from_v(v: FloatArray, k: float, c1: float) -> tuple[FloatArray, FloatArray]:
    """Bid/ask depths for every q from the vector v (inf where a side is not quoted)."""
    log_v = np.log(v)
    bid = np.full(v.shape, np.inf)
    ask = np.full(v.shape, np.inf)
    bid[:-1] = (log_v[:-1] - log_v[1:]) / k + c1
    ask[1:] = (log_v[1:] - log_v[:-1]) / k + c1
    return bid, ask


@functools.lru_cache(maxsize=64)
def exact_depth_table(
    gamma: float, xi: float, sigma: float, A: float, k: float, q_max: int, horizon_s: float | None
) -> tuple[FloatArray, FloatArray]:
    """Exact (bid, ask) depths for q = −Q … Q at T − t = ``horizon_s`` (None: stationary)."""
    m = _generator(gamma, xi, sigma, A, k, q_max)
    eigenvalues, eigenvectors = np.linalg.eigh(m)
    if horizon_s is None:
        v = np.abs(eigenvectors[:, 0])  # the ground state is of one sign (Perron–Frobenius)
    else:
        # exp(−M τ)·1, shifted by the ground eigenvalue so that v stays O(1) for long horizons
        # (a scalar factor cancels in every ratio v_q / v_(q±1)).
        shifted = m - eigenvalues[0] * np.eye(m.shape[0])
        v = scipy.linalg.expm(-shifted * horizon_s) @ np.ones(m.shape[0])
    return _depths_from_v(v, k, arrival_term(xi, k))


def exact_depth_tables(
    gamma: float, xi: float, sigma: float, A: float, k: float, q_max: int, taus: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Exact depths on a uniform grid of T − t values ``taus`` (ascending from 0): arrays [len(taus), 2Q+1].

    One matrix exponential for the step, applied repeatedly: v(τ + dτ) = exp(−M dτ) v(τ).
    """
    m = _generator(gamma, xi, sigma, A, k, q_max)
    shift = np.linalg.eigvalsh(m)[0]
    c1 = arrival_term(xi, k)
    bids = np.empty((len(taus), m.shape[0]))
    asks = np.empty_like(bids)
    v = np.ones(m.shape[0])
    step = (
        scipy.linalg.expm(-(m - shift * np.eye(m.shape[0])) * (taus[1] - taus[0])) if len(taus) > 1 else None
    )
    for i in range(len(taus)):
        if i > 0:
            assert step is not None
            v = step @ v
            v /= v.max()
        bids[i], asks[i] = _depths_from_v(v, k, c1)
    return bids, asks


def quote(config: GlftConfig, mid: float, inventory: float, sigma: float, A: float, k: float) -> ModelQuote:
    """GLFT quote for ``inventory`` (base units), approximate or exact as configured."""
    q = inventory / config.lot_size
    xi = config.gamma if config.xi is None else config.xi
    if config.method == "approx":
        bid_depth, ask_depth = approx_depths(q, config.gamma, xi, sigma, A, k)
        _, c2 = coefficients(config.gamma, xi, A, k)
        return ModelQuote(mid, mid - sigma * c2 * q, bid_depth, ask_depth)
    bids, asks = exact_depth_table(config.gamma, xi, sigma, A, k, config.q_max, config.horizon_s)
    # The exact model is defined on whole lots within ±Q: round toward zero inventory and clamp.
    index = int(max(-config.q_max, min(config.q_max, math.trunc(q)))) + config.q_max
    bid_depth, ask_depth = float(bids[index]), float(asks[index])
    if q > config.q_max:
        bid_depth = math.inf
    if q < -config.q_max:
        ask_depth = math.inf
    return ModelQuote(
        mid, reservation_price(mid, bid_depth, ask_depth, arrival_term(xi, k)), bid_depth, ask_depth
    )


def reservation_price(mid: float, bid_depth: float, ask_depth: float, c1: float) -> float:
    """Centre of the quotes; with one side off, the other side's indifference price (depth − c1)."""
    if math.isinf(bid_depth):
        return mid + ask_depth - c1
    if math.isinf(ask_depth):
        return mid - bid_depth + c1
    return mid + (ask_depth - bid_depth) / 2.0
