"""What every pricing model returns, and the YAML ``pricing:`` block that selects one.

Units, for every model (the same ones the calibration estimators produce):

- prices, depths, ``sigma``'s numerator and ``adverse_selection`` are in **price units** (quote
  currency per base unit, e.g. USDT per BERA), never ticks. A line turns a depth into a price
  as ``mid - bid_depth`` / ``mid + ask_depth`` and only then rounds to the market's tick with
  ``MarketRules.round_price`` (bids down, asks up), so a model never needs the tick.
- time is in **seconds**: ``sigma`` is price units per sqrt(second), ``A`` is market orders per
  second per side, horizons are seconds.
- ``k`` is per price unit (the arrival intensity at depth δ is ``A * exp(-k * δ)``).
- inventory enters the models in **lots**: ``q = inventory / lot_size`` where ``lot_size`` is
  the base-asset quantity of one quote. Risk aversion ``gamma`` is therefore per (price unit ×
  lot): the models' utility is of wealth counted in price units × lots, exactly as in the
  papers, whose unit trade is one share.

Depths are the papers' δ: measured from the **mid**, ``bid = mid - bid_depth``,
``ask = mid + ask_depth``. A depth can be negative (a quote through the mid when inventory is
large: the line clamps it to its zone) or ``math.inf`` (the model says: do not quote that side,
e.g. at the inventory bound of a bounded model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator


@dataclass(frozen=True, slots=True)
class ModelQuote:
    """A model's answer: reservation price and the bid/ask depths from ``mid`` (price units)."""

    mid: float
    reservation_price: float
    bid_depth: float  # mid - bid price; math.inf: do not bid
    ask_depth: float  # ask price - mid; math.inf: do not offer

    @property
    def bid_price(self) -> float | None:
        """The unrounded bid, or None when the model says not to bid."""
        return None if math.isinf(self.bid_depth) else self.mid - self.bid_depth

    @property
    def ask_price(self) -> float | None:
        """The unrounded ask, or None when the model says not to offer."""
        return None if math.isinf(self.ask_depth) else self.mid + self.ask_depth

    @property
    def spread(self) -> float:
        """Total quoted spread ``bid_depth + ask_depth`` (inf when a side is off)."""
        return self.bid_depth + self.ask_depth


class _ModelParams(BaseModel):
    """Parameters common to every model. ``None`` means: take it from online calibration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lot_size: PositiveFloat = Field(
        default=1.0, description="base-asset quantity of one quote; q = inventory / lot_size"
    )
    sigma: PositiveFloat | None = Field(
        default=None, description="mid volatility, price units per sqrt(second); None = calibrated"
    )
    A: PositiveFloat | None = Field(
        default=None,
        description="market-order arrival rate at zero depth, per second per side; None = calibrated",
    )
    k: PositiveFloat | None = Field(
        default=None, description="decay of arrivals with depth, per price unit; None = calibrated"
    )


class AvellanedaStoikovConfig(_ModelParams):
    """Avellaneda & Stoikov (2008). ``horizon`` picks T − t:

    - ``session``: until the next ``session_end_utc`` (a daily UTC time of day);
    - ``rolling``: a constant ``horizon_s`` seconds (a horizon that never gets closer);
    - ``infinite``: the paper's §2.4 discounted variant, bounded by ``q_max`` lots.
    """

    model: Literal["as2008"] = "as2008"
    gamma: PositiveFloat = Field(description="risk aversion, per (price unit × lot)")
    horizon: Literal["session", "rolling", "infinite"] = "rolling"
    horizon_s: PositiveFloat | None = Field(default=None, description="T − t for horizon=rolling, seconds")
    session_end_utc: time | None = Field(
        default=None, description="end of session for horizon=session, UTC HH:MM"
    )
    q_max: PositiveFloat | None = Field(
        default=None, description="inventory bound for horizon=infinite, lots"
    )

    @model_validator(mode="after")
    def _horizon_has_its_parameter(self) -> AvellanedaStoikovConfig:
        needed = {"rolling": self.horizon_s, "session": self.session_end_utc, "infinite": self.q_max}
        if needed[self.horizon] is None:
            name = {"rolling": "horizon_s", "session": "session_end_utc", "infinite": "q_max"}[self.horizon]
            raise ValueError(f"horizon={self.horizon} needs {name}")
        return self


class HoStollConfig(_ModelParams):
    """Ho & Stoll (1981): a one-period dealer with horizon ``horizon_s`` and trade size one lot.

    ``demand`` is the arrival curve whose elasticity sets the spread: ``exponential``
    (A·e^(−kδ), as A–S) or ``linear`` (Ho–Stoll's own α − βδ).
    """

    model: Literal["ho_stoll"] = "ho_stoll"
    gamma: PositiveFloat = Field(description="risk aversion, per (price unit × lot)")
    horizon_s: PositiveFloat = Field(description="the dealer's holding horizon, seconds")
    demand: Literal["exponential", "linear"] = "exponential"
    alpha: PositiveFloat | None = Field(
        default=None, description="linear demand intercept, orders per second per side"
    )
    beta: PositiveFloat | None = Field(
        default=None, description="linear demand slope, orders per second per price unit"
    )

    @model_validator(mode="after")
    def _linear_demand_has_its_parameters(self) -> HoStollConfig:
        if self.demand == "linear" and (self.alpha is None or self.beta is None):
            raise ValueError("demand=linear needs alpha and beta")
        return self


class GlftConfig(_ModelParams):
    """Guéant, Lehalle & Fernandez-Tapia (2013), in Guéant (2017)'s form with ξ and Δ.

    ``method=approx`` is the closed-form asymptotic quote hftbacktest uses; ``exact`` solves the
    bounded-inventory ODE system by matrix exponential (``horizon_s``) or, with no horizon, its
    stationary limit (the ground eigenvector).
    """

    model: Literal["glft"] = "glft"
    gamma: PositiveFloat = Field(description="risk aversion, per (price unit × lot)")
    xi: float | None = Field(
        default=None,
        ge=0,
        description="ξ of Guéant (2017), per (price unit × lot); None = gamma (CARA), 0 = risk-neutral",
    )
    method: Literal["approx", "exact"] = "approx"
    q_max: int = Field(default=20, ge=1, description="inventory bound for method=exact, lots")
    horizon_s: PositiveFloat | None = Field(
        default=None, description="T − t for method=exact; None = stationary"
    )


class CarteaJaimungalConfig(_ModelParams):
    """Cartea, Jaimungal & Penalva (2015) ch. 10: running and terminal inventory penalties.

    Optional terms: ``adverse_selection`` ε (each market order moves the mid ε against the
    side it hits, §10.3-style) and ``drift`` (a short-term alpha, the mid's expected drift).
    """

    model: Literal["cjp"] = "cjp"
    running_penalty: float = Field(ge=0, description="φ, per (price unit × lot² × second)")
    terminal_penalty: float = Field(ge=0, description="α, liquidation cost per (price unit × lot²)")
    horizon_s: PositiveFloat = Field(description="T − t, seconds (rolling)")
    q_max: int = Field(default=20, ge=1, description="largest long inventory, lots")
    q_min: int = Field(default=-20, le=-1, description="largest short inventory, lots (negative)")
    adverse_selection: float = Field(
        default=0.0, ge=0, description="ε, mid jump per market order, price units"
    )
    drift: float = Field(
        default=0.0, description="short-term alpha: expected mid drift, price units per second"
    )


PricingModelConfig = Annotated[
    AvellanedaStoikovConfig | HoStollConfig | GlftConfig | CarteaJaimungalConfig,
    Field(discriminator="model"),
]
"""The ``pricing:`` block of a passive line: ``model: as2008|ho_stoll|glft|cjp`` plus parameters."""
