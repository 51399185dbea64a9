"""Cartea, Jaimungal & Penalva (2015), *Algorithmic and High-Frequency Trading*, ch. 10 (market making).

The market maker maximises E[X_T + q_T (S_T − α q_T) − φ ∫ q_u² du] (§10.2): α is the terminal
liquidation penalty, φ the running inventory penalty. Market orders arrive at rate λ per side and
fill a limit order at depth δ with probability e^(−κδ) (our A and k). Inventory q in lots,
q_min ≤ q ≤ q_max. With the ansatz H = x + q S + h(t, q) and h = (1/κ) ln ω (§10.2.1), the HJB
becomes the linear system

    ∂_t ω + 𝐀 ω = 0,    ω_q(T) = e^(−κ α q²),    so  ω(t) = exp(𝐀 (T − t)) ω(T),

with 𝐀 tridiagonal: 𝐀_qq = −φ κ q² (+ κ μ q with a drift μ), 𝐀_(q,q±1) = λ e^(−1) (× e^(−κε)
with adverse selection). The optimal depths (sell side δ⁺ = ask, buy side δ⁻ = bid) are

    δ⁺*(t, q) = 1/κ + ε + (1/κ) ln(ω_q / ω_(q−1))      (no ask at q = q_min)
    δ⁻*(t, q) = 1/κ + ε + (1/κ) ln(ω_q / ω_(q+1))      (no bid at q = q_max)

Optional terms, both off by default:

- ``adverse_selection`` ε: each market order moves the mid by ε in its direction (buy orders up,
  sell orders down), filled or not, as in the chapter's adverse-selection extension. With equal
  buy and sell rates the q·ε terms cancel and the quote widens by ε on each side.
- ``drift`` μ: a short-term alpha taken as locally constant (dS = μ dt + σ dW); it adds κ μ q to
  the diagonal. The chapter's stochastic-alpha model (a mean-reverting α_t) needs a PDE in
  (t, α, q) and is not implemented.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
import scipy.linalg

from strategies.models.base import CarteaJaimungalConfig, ModelQuote
from strategies.models.glft import reservation_price

FloatArray = npt.NDArray[np.float64]


def _generator(
    phi: float, kappa: float, lam: float, q_min: int, q_max: int, adverse_selection: float, drift: float
) -> FloatArray:
    """The matrix 𝐀 (rows q = q_min … q_max)."""
    q = np.arange(q_min, q_max + 1, dtype=np.float64)
    off = np.full(q_max - q_min, lam * math.exp(-1.0 - kappa * adverse_selection))
    return np.diag(-phi * kappa * q**2 + kappa * drift * q) + np.diag(off, 1) + np.diag(off, -1)


def _terminal(alpha: float, kappa: float, q_min: int, q_max: int) -> FloatArray:
    q = np.arange(q_min, q_max + 1, dtype=np.float64)
    exponent = -kappa * alpha * q**2
    terminal: FloatArray = np.exp(exponent - exponent.max())  # scaled: only ratios matter
    return terminal


def _depths_from_omega(
    omega: FloatArray, kappa: float, adverse_selection: float
) -> tuple[FloatArray, FloatArray]:
    base = 1.0 / kappa + adverse_selection
    log_w = np.log(omega)
    bid = np.full(omega.shape, np.inf)
    ask = np.full(omega.shape, np.inf)
    bid[:-1] = base + (log_w[:-1] - log_w[1:]) / kappa
    ask[1:] = base + (log_w[1:] - log_w[:-1]) / kappa
    return bid, ask


@functools.lru_cache(maxsize=64)
def depth_table(
    phi: float,
    alpha: float,
    kappa: float,
    lam: float,
    q_min: int,
    q_max: int,
    tau: float,
    adverse_selection: float = 0.0,
    drift: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """(bid, ask) depths for q = q_min … q_max at T − t = ``tau`` seconds."""
    a = _generator(phi, kappa, lam, q_min, q_max, adverse_selection, drift)
    # Shift by the top eigenvalue (a scalar factor cancels in every ratio) so that ω stays O(1).
    shift = float(np.max(np.linalg.eigvals(a).real))
    omega = scipy.linalg.expm((a - shift * np.eye(a.shape[0])) * tau) @ _terminal(alpha, kappa, q_min, q_max)
    return _depths_from_omega(omega, kappa, adverse_selection)


def depth_tables(
    phi: float,
    alpha: float,
    kappa: float,
    lam: float,
    q_min: int,
    q_max: int,
    taus: FloatArray,
    adverse_selection: float = 0.0,
    drift: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Depths on a uniform grid of T − t values ``taus`` (ascending from 0): arrays [len(taus), n_q]."""
    a = _generator(phi, kappa, lam, q_min, q_max, adverse_selection, drift)
    shift = float(np.max(np.linalg.eigvals(a).real))
    omega = _terminal(alpha, kappa, q_min, q_max)
    bids = np.empty((len(taus), a.shape[0]))
    asks = np.empty_like(bids)
    step = (
        scipy.linalg.expm((a - shift * np.eye(a.shape[0])) * (taus[1] - taus[0])) if len(taus) > 1 else None
    )
    for i in range(len(taus)):
        if i > 0:
            assert step is not None
            omega = step @ omega
            omega /= omega.max()
        bids[i], asks[i] = _depths_from_omega(omega, kappa, adverse_selection)
    return bids, asks


def quote(config: CarteaJaimungalConfig, mid: float, inventory: float, A: float, k: float) -> ModelQuote:
    """CJP quote for ``inventory`` (base units) with a rolling horizon ``config.horizon_s``."""
    q = inventory / config.lot_size
    bids, asks = depth_table(
        config.running_penalty,
        config.terminal_penalty,
        k,
        A,
        config.q_min,
        config.q_max,
        config.horizon_s,
        config.adverse_selection,
        config.drift,
    )
    # Whole lots only: round toward zero inventory, and stop the growing side beyond the bounds.
    index = int(max(config.q_min, min(config.q_max, math.trunc(q)))) - config.q_min
    bid_depth, ask_depth = float(bids[index]), float(asks[index])
    if q > config.q_max:
        bid_depth = math.inf
    if q < config.q_min:
        ask_depth = math.inf
    # With one side off, the reservation price is the other side's indifference price.
    centre = reservation_price(mid, bid_depth, ask_depth, 1.0 / k + config.adverse_selection)
    return ModelQuote(mid, centre, bid_depth, ask_depth)
