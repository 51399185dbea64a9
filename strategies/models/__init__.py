"""Pricing models a passive line can select with ``pricing: {model: ...}``.

``quote(config, mid, inventory, sigma, now, calibration)`` returns the model's reservation price
and depths from the mid in price units (see ``base.py`` for units), or None when an input is
neither pinned in the config nor calibrated yet: the line then falls back to its static spread,
and ``missing_inputs`` (or ``calibration.reason``) says why.

Inputs are taken in this order: a value pinned in the config, then the ``sigma`` argument (for
σ), then the calibration snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategies.calibration import CalibrationState
from strategies.models import avellaneda_stoikov, cartea_jaimungal, glft, ho_stoll
from strategies.models.base import (
    AvellanedaStoikovConfig,
    CarteaJaimungalConfig,
    GlftConfig,
    HoStollConfig,
    ModelQuote,
    PricingModelConfig,
)

__all__ = [
    "AvellanedaStoikovConfig",
    "CarteaJaimungalConfig",
    "GlftConfig",
    "HoStollConfig",
    "MarketInputs",
    "ModelQuote",
    "PricingModelConfig",
    "missing_inputs",
    "quote",
    "resolve_inputs",
]


@dataclass(frozen=True, slots=True)
class MarketInputs:
    """σ (price/√s), A (per second per side) and k (per price unit) as a model will use them."""

    sigma: float | None
    A: float | None
    k: float | None


def resolve_inputs(
    config: PricingModelConfig, sigma: float | None, calibration: CalibrationState | None
) -> MarketInputs:
    """Pinned config values first, then the ``sigma`` argument, then the calibration snapshot."""
    cal_sigma = calibration.sigma if calibration else None
    return MarketInputs(
        sigma=config.sigma if config.sigma is not None else (sigma if sigma is not None else cal_sigma),
        A=config.A if config.A is not None else (calibration.A if calibration else None),
        k=config.k if config.k is not None else (calibration.k if calibration else None),
    )


def _needed(config: PricingModelConfig) -> tuple[str, ...]:
    if isinstance(config, AvellanedaStoikovConfig):
        return ("sigma", "k")
    if isinstance(config, HoStollConfig):
        return ("sigma",) if config.demand == "linear" else ("sigma", "k")
    if isinstance(config, GlftConfig):
        return ("sigma", "A", "k")
    return ("A", "k")  # CJP: the penalties replace σ


def missing_inputs(
    config: PricingModelConfig, sigma: float | None, calibration: CalibrationState | None
) -> str:
    """Why the model cannot quote yet ('' when it can), for line state and status."""
    inputs = resolve_inputs(config, sigma, calibration)
    missing = [name for name in _needed(config) if getattr(inputs, name) is None]
    if not missing:
        return ""
    detail = f" ({calibration.reason})" if calibration and calibration.reason else " (no calibration)"
    return f"{config.model}: waiting for {', '.join(missing)}{detail}"


def quote(
    config: PricingModelConfig,
    mid: float,
    inventory: float,
    sigma: float | None,
    now: float,
    calibration: CalibrationState | None,
) -> ModelQuote | None:
    """The model's quote for ``inventory`` (base units) at ``now`` (epoch seconds), or None."""
    inputs = resolve_inputs(config, sigma, calibration)
    if any(getattr(inputs, name) is None for name in _needed(config)):
        return None  # missing_inputs() says why
    if isinstance(config, AvellanedaStoikovConfig):
        assert inputs.sigma is not None and inputs.k is not None
        return avellaneda_stoikov.quote(config, mid, inventory, inputs.sigma, inputs.k, now)
    if isinstance(config, HoStollConfig):
        assert inputs.sigma is not None
        return ho_stoll.quote(config, mid, inventory, inputs.sigma, inputs.k)
    if isinstance(config, GlftConfig):
        assert inputs.sigma is not None and inputs.A is not None and inputs.k is not None
        return glft.quote(config, mid, inventory, inputs.sigma, inputs.A, inputs.k)
    assert inputs.A is not None and inputs.k is not None
    return cartea_jaimungal.quote(config, mid, inventory, inputs.A, inputs.k)
