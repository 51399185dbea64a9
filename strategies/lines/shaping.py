"""How coefficients shape a line: volume coefficient and inventory lean into spread and size factors.

Everything here is a multiplier around 1.0 applied to a line's configured spread (or zone) and
size. Kept apart from the lines so the rules are read, tested and documented in one place.

Volume (coefficient ``v`` from ``strategies/volume.py``, bounded, 1.0 = normal activity):

* spread ``tighten``: × 1/v (busier → tighter); ``widen``: × v; ``off``: × 1.
* size ``grow``: × v (busier → larger); ``shrink``: × 1/v; ``off``: × 1.

Inventory (coefficient ``c`` in [−1, 1], > 0 = long; see ``strategies/inventory.py``):

* bid spread × (1 + skew·c), ask spread × (1 − skew·c): long → bids further away, asks closer;
* the side that grows the position shrinks: long → bid size × (1 − size_skew·c), short → ask
  size × (1 − size_skew·|c|); the reducing side keeps its size;
* beyond the maximum deviation the growing side does not quote at all (``bid_allowed`` /
  ``ask_allowed``), and the optional no-loss rule caps bids / floors asks at the inventory
  price ± margin.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategies.config import VolumeSizeMode, VolumeSpreadMode


def volume_spread_factor(coefficient: float, mode: VolumeSpreadMode) -> float:
    """Multiplier on a spread or zone for a volume coefficient (must be > 0)."""
    if mode is VolumeSpreadMode.TIGHTEN:
        return 1.0 / coefficient
    if mode is VolumeSpreadMode.WIDEN:
        return coefficient
    return 1.0


def volume_size_factor(coefficient: float, mode: VolumeSizeMode) -> float:
    """Multiplier on a size for a volume coefficient (must be > 0)."""
    if mode is VolumeSizeMode.GROW:
        return coefficient
    if mode is VolumeSizeMode.SHRINK:
        return 1.0 / coefficient
    return 1.0


@dataclass(frozen=True, slots=True)
class InventorySkew:
    """Per-side multipliers and permissions the inventory manager hands to the lines."""

    coefficient: float = 0.0
    bid_spread: float = 1.0
    ask_spread: float = 1.0
    bid_size: float = 1.0
    ask_size: float = 1.0
    bid_allowed: bool = True
    ask_allowed: bool = True
    bid_cap: float | None = None  # no-loss rule: never buy above this price
    ask_floor: float | None = None  # no-loss rule: never sell below this price

    @classmethod
    def from_coefficient(
        cls,
        coefficient: float,
        *,
        skew: float,
        size_skew: float,
        bid_allowed: bool = True,
        ask_allowed: bool = True,
        bid_cap: float | None = None,
        ask_floor: float | None = None,
    ) -> InventorySkew:
        """Apply the mapping of the module docstring to a coefficient in [−1, 1]."""
        c = max(-1.0, min(1.0, coefficient))
        return cls(
            coefficient=c,
            bid_spread=max(0.0, 1.0 + skew * c),
            ask_spread=max(0.0, 1.0 - skew * c),
            bid_size=max(0.0, 1.0 - size_skew * max(c, 0.0)),
            ask_size=max(0.0, 1.0 - size_skew * max(-c, 0.0)),
            bid_allowed=bid_allowed,
            ask_allowed=ask_allowed,
            bid_cap=bid_cap,
            ask_floor=ask_floor,
        )


NEUTRAL = InventorySkew()
"""No inventory lean (lines with ``inventory_skew: false``, or no inventory yet)."""


@dataclass(frozen=True, slots=True)
class LineShape:
    """The factors one line applies on one venue at one moment (published as line state)."""

    spread_coefficient: float
    size_coefficient: float
    skew: InventorySkew
    # risk widening (volatility, profit target): multiplies the final distances from the
    # reference, after the lines' own min/max bounds, so a spread at its max still widens
    widen: float = 1.0


def line_shape(
    volume_coefficient: float,
    spread_mode: VolumeSpreadMode,
    size_mode: VolumeSizeMode,
    skew: InventorySkew,
) -> LineShape:
    return LineShape(
        spread_coefficient=volume_spread_factor(volume_coefficient, spread_mode),
        size_coefficient=volume_size_factor(volume_coefficient, size_mode),
        skew=skew,
    )
