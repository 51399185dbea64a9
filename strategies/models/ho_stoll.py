"""Ho & Stoll (1981), "Optimal dealer pricing under transactions and return uncertainty", JFE 9.

What we implement, exactly (the form A–S 2008 §2 build on): a dealer with CARA risk aversion
γ, holding horizon τ (``horizon_s``, constant: the one-period dealer of Ho–Stoll, not a session
clock) and trades of one lot values one more or one less lot at the indifference prices

    r^b = s − γ σ² τ (q + ½),     r^a = s − γ σ² τ (q − ½)

(reservation price r = s − γ σ² τ q, shifted linearly by inventory; the ½ lots are Ho–Stoll's
transaction-size term: the spread grows with the risk of the trade itself). The depth on each
side then solves the dealer's first-order condition for an arrival curve λ(δ)
(A–S 2008 eqs. (13)–(14) for a general λ):

    δ − (1/γ) ln(1 − γ λ(δ)/λ'(δ)) = s − r^b   (bid; ask with r^a − s)

- ``demand=exponential``, λ = A e^(−kδ):  δ^b = s − r^b + (1/γ) ln(1 + γ/k)  (closed form);
- ``demand=linear``, Ho–Stoll's λ = α − βδ:  δ − (1/γ) ln(1 + γ(α/β − δ)) = s − r^b, solved by
  bisection. Its risk-neutral limit (γ → 0) is Ho–Stoll's result δ = α/(2β) + (s − r^b)/2: the
  monopoly half spread α/(2β), and half of the inventory adjustment passed on to the price.
  A side whose root lies beyond α/β (no orders would arrive) is not quoted.
"""

from __future__ import annotations

import math

from strategies.models.base import HoStollConfig, ModelQuote

_BISECTION_STEPS = 200  # float precision is reached well before this; the loop exits early


def indifference_offsets(q: float, gamma: float, sigma: float, tau: float) -> tuple[float, float]:
    """(s − r^b, r^a − s): how far below / above the mid the dealer is indifferent to trade."""
    risk = gamma * sigma**2 * tau
    return risk * (q + 0.5), -risk * (q - 0.5)


def exponential_depth(offset: float, gamma: float, k: float) -> float:
    """Depth for λ = A e^(−kδ): the offset plus the arrival term (1/γ) ln(1 + γ/k)."""
    return offset + math.log1p(gamma / k) / gamma


def linear_depth(offset: float, gamma: float, alpha: float, beta: float) -> float:
    """Depth for Ho–Stoll's linear demand λ = α − βδ; inf when no positive-rate quote is optimal."""
    choke = alpha / beta  # depth at which no orders arrive
    if offset >= choke:
        return math.inf

    def excess(delta: float) -> float:
        return delta - math.log1p(gamma * (choke - delta)) / gamma - offset

    # excess(offset) < 0 and excess → +inf at choke + 1/γ; excess is increasing in between.
    lo, hi = offset, choke + 1.0 / gamma
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if excess(mid) < 0.0:
            lo = mid
        else:
            hi = mid
    depth = 0.5 * (lo + hi)
    return depth if depth < choke else math.inf


def quote(config: HoStollConfig, mid: float, inventory: float, sigma: float, k: float | None) -> ModelQuote:
    """Ho–Stoll quote for ``inventory`` (base units); ``k`` is needed for exponential demand only."""
    q = inventory / config.lot_size
    bid_offset, ask_offset = indifference_offsets(q, config.gamma, sigma, config.horizon_s)
    if config.demand == "linear":
        assert config.alpha is not None and config.beta is not None  # the config validator
        bid_depth = linear_depth(bid_offset, config.gamma, config.alpha, config.beta)
        ask_depth = linear_depth(ask_offset, config.gamma, config.alpha, config.beta)
    else:
        if k is None:
            raise ValueError("exponential demand needs k")
        bid_depth = exponential_depth(bid_offset, config.gamma, k)
        ask_depth = exponential_depth(ask_offset, config.gamma, k)
    reservation = mid - config.gamma * sigma**2 * config.horizon_s * q
    return ModelQuote(mid, reservation, bid_depth, ask_depth)
