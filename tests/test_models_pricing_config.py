"""The ``pricing:`` block: each model selectable from YAML, inputs from config or calibration, fallback."""

from __future__ import annotations

import math

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from strategies.calibration import CalibrationState
from strategies.models import ModelQuote, PricingModelConfig, missing_inputs, quote
from strategies.models.avellaneda_stoikov import finite_horizon_depths
from strategies.models.glft import approx_depths


class Line(BaseModel):
    """How a passive line's config embeds the block."""

    pricing: PricingModelConfig


YAML = """
- pricing: {model: as2008, gamma: 0.1, horizon: rolling, horizon_s: 300}
- pricing: {model: as2008, gamma: 0.1, horizon: session, session_end_utc: "16:00"}
- pricing: {model: as2008, gamma: 0.1, horizon: infinite, q_max: 10}
- pricing: {model: ho_stoll, gamma: 0.2, horizon_s: 60, demand: linear, alpha: 2, beta: 10}
- pricing: {model: glft, gamma: 0.05, method: exact, q_max: 15, horizon_s: 600, lot_size: 2}
- pricing: {model: cjp, running_penalty: 0.001, terminal_penalty: 0.01, horizon_s: 600, A: 1.2, k: 40}
"""

CALIBRATED = CalibrationState(sigma=0.002, A=1.5, k=30.0, orders=500, mid=1.0)


def test_every_model_is_selectable_from_yaml_and_quotes_with_calibration() -> None:
    lines = [Line.model_validate(item) for item in yaml.safe_load(YAML)]
    assert [line.pricing.model for line in lines] == ["as2008", "as2008", "as2008", "ho_stoll", "glft", "cjp"]
    for line in lines:
        result = quote(line.pricing, 1.0, 10.0, None, 1_767_000_000.0, CALIBRATED)
        assert isinstance(result, ModelQuote)
        assert math.isfinite(result.reservation_price)
        assert result.spread > 0
        assert result.reservation_price < 1.0  # long 10 units: every model leans to sell


def test_unknown_model_and_missing_parameter_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="as2008"):
        Line.model_validate({"pricing": {"model": "black_scholes", "gamma": 0.1}})
    with pytest.raises(ValidationError, match="horizon_s"):
        Line.model_validate({"pricing": {"model": "as2008", "gamma": 0.1, "horizon": "rolling"}})
    with pytest.raises(ValidationError, match="extra"):
        Line.model_validate({"pricing": {"model": "glft", "gamma": 0.1, "kappa": 3}})


def test_uncalibrated_model_falls_back_and_says_why() -> None:
    config = Line.model_validate({"pricing": {"model": "glft", "gamma": 0.1}}).pricing
    waiting = CalibrationState(sigma=0.002, A=None, k=None, orders=12, mid=1.0, reason="intensity: 12 orders")
    assert quote(config, 1.0, 0.0, None, 0.0, waiting) is None
    reason = missing_inputs(config, None, waiting)
    assert "A, k" in reason and "12 orders" in reason
    assert quote(config, 1.0, 0.0, None, 0.0, None) is None
    assert "no calibration" in missing_inputs(config, None, None)


def test_pinned_parameters_win_over_calibration_and_sigma_argument_over_calibrated_sigma() -> None:
    config = Line.model_validate({"pricing": {"model": "glft", "gamma": 0.1, "k": 50.0}}).pricing
    result = quote(config, 2.0, 3.0, 0.004, 0.0, CALIBRATED)
    assert result is not None
    bid, ask = approx_depths(3.0, 0.1, 0.1, 0.004, CALIBRATED.A or 0.0, 50.0)
    assert (result.bid_depth, result.ask_depth) == pytest.approx((bid, ask))


def test_as2008_rolling_quote_is_the_published_formula() -> None:
    config = Line.model_validate(yaml.safe_load(YAML)[0]).pricing
    result = quote(config, 1.0, 10.0, None, 0.0, CALIBRATED)
    assert result is not None
    bid, ask = finite_horizon_depths(10.0, 0.1, 0.002, 300.0, 30.0)
    assert result.bid_price == pytest.approx(1.0 - bid)
    assert result.ask_price == pytest.approx(1.0 + ask)
