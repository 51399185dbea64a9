"""Ho–Stoll (1981): indifference prices linear in inventory, depths from the arrival curve's elasticity."""

from __future__ import annotations

import math

import pytest
from scipy.optimize import minimize_scalar

from strategies.models import ho_stoll
from strategies.models.base import HoStollConfig


def numeric_depth_linear(offset: float, gamma: float, alpha: float, beta: float) -> float:
    """argmax over δ < α/β of (α − βδ)(1 − e^(−γ(δ − offset)))/γ, numerically."""
    result = minimize_scalar(
        lambda d: -(alpha - beta * d) * (1.0 - math.exp(-gamma * (d - offset))) / gamma,
        bounds=(offset, alpha / beta),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(result.x)


def test_indifference_prices_by_hand() -> None:
    # γσ²τ = 0.5·0.04·10 = 0.2; q = 2: s − r^b = 0.2·2.5 = 0.5, r^a − s = −0.2·1.5 = −0.3
    assert ho_stoll.indifference_offsets(2.0, 0.5, 0.2, 10.0) == pytest.approx((0.5, -0.3))


@pytest.mark.parametrize("offset", [-0.4, 0.0, 0.3, 1.2])
def test_linear_demand_depth_maximises_the_dealers_expected_utility(offset: float) -> None:
    gamma, alpha, beta = 0.8, 3.0, 1.5
    depth = ho_stoll.linear_depth(offset, gamma, alpha, beta)
    assert depth == pytest.approx(numeric_depth_linear(offset, gamma, alpha, beta), abs=1e-6)


def test_linear_demand_risk_neutral_limit_is_ho_stolls_half_markup_plus_half_adjustment() -> None:
    alpha, beta, offset = 3.0, 1.5, 0.4
    assert ho_stoll.linear_depth(offset, 1e-7, alpha, beta) == pytest.approx(
        alpha / (2 * beta) + offset / 2, abs=1e-5
    )


def test_side_beyond_the_choke_price_is_not_quoted() -> None:
    assert math.isinf(ho_stoll.linear_depth(2.5, 0.5, 3.0, 1.5))  # offset ≥ α/β = 2


def test_exponential_demand_quote_by_hand() -> None:
    config = HoStollConfig(gamma=0.5, horizon_s=10.0)
    quote = ho_stoll.quote(config, 20.0, 2.0, 0.2, k=1.0)
    arrival = 2.0 * math.log(1.5)  # (1/γ) ln(1 + γ/k)
    assert quote.bid_depth == pytest.approx(0.5 + arrival)
    assert quote.ask_depth == pytest.approx(-0.3 + arrival)
    assert quote.reservation_price == pytest.approx(20.0 - 0.2 * 2.0)
    assert quote.spread == pytest.approx(0.2 + 2 * arrival)  # trade-size risk + arrival terms


def test_linear_config_requires_alpha_and_beta() -> None:
    with pytest.raises(ValueError, match="alpha and beta"):
        HoStollConfig(gamma=0.5, horizon_s=10.0, demand="linear", alpha=1.0)
