"""Quote sizing, refresh timing and aggressiveness (seed 002's "Quote Management", done sensibly).

Seed 002's snippets capped sizes at the minimum size, lengthened the refresh interval by
``(1 − volatility)`` (negative above 100% volatility) and narrowed the spread to zero at full
aggressiveness. Here:

- **size** shrinks on the side that would grow the position as inventory approaches the limit
  (linearly, or exponentially as in Guéant's / Hummingbot's ``e^(−η q/Q)``), is never more than
  the room left to the limit, and is zero below the minimum size;
- **refresh interval** shortens as volatility rises: ``max_interval / (1 + σ/σ_ref)``, within
  ``[min_interval, max_interval]``;
- **aggressiveness** in [0, 1] per side: ½ when flat, rising to 1 on the side that reduces the
  position as |q| → Q and falling to 0 on the side that grows it, damped toward ½ … 0 by
  volatility; a side's spread goes from ``max_spread`` (0) to ``min_spread`` (1).

Sizes are in base units, volatilities in any one unit (σ and σ_ref must match), times in seconds.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, model_validator

from strategies.types import Side


class QuoteManagementConfig(BaseModel):
    """The sizing/timing/aggressiveness settings a line may carry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_size: PositiveFloat = Field(description="size when flat, base units")
    max_position: PositiveFloat = Field(description="|inventory| at which the growing side stops, base units")
    min_size: NonNegativeFloat = Field(default=0.0, description="sizes below this are not quoted, base units")
    shrink: Literal["linear", "exponential"] = "linear"
    eta: PositiveFloat = Field(default=1.0, description="exponential shrink rate: size × e^(−η q/Q)")
    min_refresh_s: PositiveFloat = 0.5
    max_refresh_s: PositiveFloat = 10.0
    reference_sigma: PositiveFloat = Field(description="volatility at which the refresh interval halves")

    @model_validator(mode="after")
    def _interval_bounds_in_order(self) -> QuoteManagementConfig:
        if self.min_refresh_s > self.max_refresh_s:
            raise ValueError("min_refresh_s must not exceed max_refresh_s")
        return self


def quote_sizes(
    base_size: float,
    inventory: float,
    max_position: float,
    min_size: float = 0.0,
    shrink: Literal["linear", "exponential"] = "linear",
    eta: float = 1.0,
) -> tuple[float, float]:
    """(bid size, ask size) for ``inventory`` (signed, base units) against ``±max_position``."""
    load = inventory / max_position  # +1 at the long limit, −1 at the short limit

    def factor(growth: float) -> float:  # growth > 0: this side grows |inventory|
        if growth <= 0.0:
            return 1.0
        return max(0.0, 1.0 - growth) if shrink == "linear" else math.exp(-eta * growth)

    bid = min(base_size * factor(load), max(0.0, max_position - inventory))
    ask = min(base_size * factor(-load), max(0.0, max_position + inventory))
    return (bid if bid >= min_size and bid > 0.0 else 0.0, ask if ask >= min_size and ask > 0.0 else 0.0)


def refresh_interval(sigma: float, reference_sigma: float, min_interval: float, max_interval: float) -> float:
    """Seconds between quote refreshes: ``max_interval`` when calm, halved at ``reference_sigma``."""
    return min(max_interval, max(min_interval, max_interval / (1.0 + max(sigma, 0.0) / reference_sigma)))


def should_refresh(now: float, last_refresh: float, interval: float) -> bool:
    """True once ``interval`` seconds have passed since ``last_refresh``."""
    return now - last_refresh >= interval


def aggressiveness(
    side: Side, inventory: float, max_position: float, sigma: float, reference_sigma: float
) -> float:
    """How keen ``side`` is to trade, in [0, 1]: reducing the position is keen, volatility tempers it."""
    load = max(-1.0, min(1.0, inventory / max_position))
    reduces = -side.sign * load  # > 0 when this side's fills shrink |inventory|
    keen = 0.5 + 0.5 * reduces
    return max(0.0, min(1.0, keen / (1.0 + max(sigma, 0.0) / reference_sigma)))


def spread_for(aggressiveness_: float, min_spread: float, max_spread: float) -> float:
    """A side's spread: ``max_spread`` at aggressiveness 0, ``min_spread`` at 1, linear between."""
    a = max(0.0, min(1.0, aggressiveness_))
    return max_spread - a * (max_spread - min_spread)
