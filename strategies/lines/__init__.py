"""Quoting lines: pure price and size rules that turn a book, a reference price and coefficients
into :class:`~strategies.types.QuoteTarget`s.

Prices are worked out in whole ticks (integers), so "best bid + one tick", zone edges and taker
protection are exact comparisons; only the final price becomes a ``Decimal`` (``tick × n``).
Rounding is always in the safe direction: a bid never rounds up, an ask never rounds down, a
size never rounds up.
"""

from __future__ import annotations

import math
from decimal import Decimal

from strategies.types import MarketRules, QuoteTarget, Side

# Float error of a price divided by a tick is ~1e-16 relative; 1e-9 ticks absorbs it and nothing real.
_TICK_EPSILON = 1e-9
_GRID_SNAP_ULPS = 4


class TickGrid:
    """One market's price grid and size rules, with float -> tick conversions for the hot path."""

    __slots__ = ("_max_qty", "_min_notional", "_min_qty", "_step_dec", "_tick_dec", "rules", "step", "tick")

    def __init__(self, rules: MarketRules) -> None:
        self.rules = rules
        self.tick = float(rules.tick)
        self.step = float(rules.step)
        self._tick_dec = rules.tick
        self._step_dec = rules.step
        self._min_qty = rules.min_qty
        self._min_notional = rules.min_notional
        self._max_qty = rules.max_qty

    def floor_ticks(self, price: float) -> int:
        """Ticks of the highest grid price at or below ``price`` (a bid's safe rounding)."""
        tick = self.tick
        units = price / tick
        nearest = round(units)
        # within a few ulps of a grid price: float noise of the arithmetic (as MarketRules
        # snaps), never a distance a caller meant (a relative epsilon would swallow tiny bps)
        if abs(price - nearest * tick) <= _GRID_SNAP_ULPS * math.ulp(price):
            return nearest
        return math.floor(units)

    def ceil_ticks(self, price: float) -> int:
        """Ticks of the lowest grid price at or above ``price`` (an ask's safe rounding)."""
        tick = self.tick
        units = price / tick
        nearest = round(units)
        if abs(price - nearest * tick) <= _GRID_SNAP_ULPS * math.ulp(price):  # as in floor_ticks
            return nearest
        return math.ceil(units)

    def ticks(self, price: float) -> int:
        """Ticks of a price already on the grid (a book level)."""
        return round(price / self.tick)

    def size_steps(self, size: float) -> int:
        """Whole steps in ``size``, rounded down (a size never rounds up)."""
        if size <= 0.0:
            return 0
        units = size / self.step
        return math.floor(units + _TICK_EPSILON * max(1.0, units))

    def price(self, ticks: int) -> Decimal:
        """The exact decimal price of ``ticks`` (e.g. 25000 × 0.0001 = 2.5000)."""
        return self._tick_dec * ticks

    def target(
        self,
        *,
        venue: str,
        side: Side,
        ticks: int,
        steps: int,
        line_id: str,
        level: int,
        refresh_tolerance_bps: float,
        size_tolerance: float,
        min_age_s: float,
        max_age_s: float | None,
    ) -> QuoteTarget | None:
        """A target of ``ticks`` × tick and ``steps`` × step, or None if it breaks the market's
        limits (min qty, max qty, min notional): a quote too small is skipped, never rounded up.
        """
        if ticks <= 0 or steps <= 0:
            return None
        qty = self._step_dec * steps
        if qty < self._min_qty or (self._max_qty is not None and qty > self._max_qty):
            return None
        price = self._tick_dec * ticks
        if price * qty < self._min_notional:
            return None
        # positional: this runs for every new quote on the hot path
        return QuoteTarget(
            venue, self.rules.symbol, side, price, qty, line_id, level,
            refresh_tolerance_bps, size_tolerance, min_age_s, max_age_s,
        )


class TargetCache:
    """The last target of each (side, level) of one line on one venue.

    Most book updates leave a quote's ticks and steps unchanged; reusing the same
    :class:`QuoteTarget` then skips all decimal work on the hot path. The size a slot was last
    asked for is kept too: an unchanged size has the same steps without working them out.
    """

    __slots__ = (
        "_asks",
        "_bids",
        "_grid",
        "_line_id",
        "_max_age_s",
        "_min_age_s",
        "_price_tol",
        "_size_tol",
        "_venue",
    )

    def __init__(
        self,
        grid: TickGrid,
        *,
        venue: str,
        line_id: str,
        refresh_tolerance_bps: float,
        size_tolerance: float,
        min_age_s: float,
        max_age_s: float | None,
    ) -> None:
        self._grid = grid
        self._venue = venue
        self._line_id = line_id
        self._price_tol = refresh_tolerance_bps
        self._size_tol = size_tolerance
        self._min_age_s = min_age_s
        self._max_age_s = max_age_s
        # level -> (ticks, size asked for, its steps, target), one map per side
        self._bids: dict[int, tuple[int, float, int, QuoteTarget | None]] = {}
        self._asks: dict[int, tuple[int, float, int, QuoteTarget | None]] = {}

    def get(self, side: Side, level: int, ticks: int, size: float) -> QuoteTarget | None:
        """The target for a slot at ``ticks`` and ``size`` (rounded down to the step)."""
        entries = self._bids if side is Side.BUY else self._asks
        entry = entries.get(level)
        if entry is not None and entry[1] == size:
            if entry[0] == ticks:
                return entry[3]
            steps = entry[2]
        else:
            steps = self._grid.size_steps(size)
            if entry is not None and entry[0] == ticks and entry[2] == steps:
                entries[level] = (ticks, size, steps, entry[3])
                return entry[3]
        target = self._grid.target(
            venue=self._venue,
            side=side,
            ticks=ticks,
            steps=steps,
            line_id=self._line_id,
            level=level,
            refresh_tolerance_bps=self._price_tol,
            size_tolerance=self._size_tol,
            min_age_s=self._min_age_s,
            max_age_s=self._max_age_s,
        )
        entries[level] = (ticks, size, steps, target)
        return target
