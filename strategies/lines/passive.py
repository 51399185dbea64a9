"""Passive lines: a ladder at a spread from the reference price (seed 004 passive lines, seed 000 levels).

For one side of one venue, with ``s`` the configured ``mid_spread_bps``:

* spread of level 0 = ``clip(s · spread_coefficient · inventory_side_factor, min_spread, max_spread)``;
  level ``i`` sits ``i · level_step_bps`` further out (min/max bound level 0; the ladder's
  steps are kept, not squashed against the bound); the risk engine's widening
  (``LineShape.widen``) multiplies the result, beyond the bounds;
* bid = ref · (1 − spread/1e4) rounded down to the tick, ask = ref · (1 + spread/1e4) rounded up;
* taker protection: a level that would reach the venue's best ask (bid side) or our own
  resting ask is skipped — a passive line never takes; the no-loss rule caps bids / floors
  asks at the inventory price ± margin;
* size = quantity · level_weight · size_coefficient · inventory_side_factor · (1 + u), with
  ``u ~ U(−r, r)`` from the injected RNG, drawn once per side and level per ``timeout_s``
  epoch so that a size does not change (and the order is not replaced) on every book update.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from random import Random

from strategies.book import L2Book
from strategies.config import PassiveLineConfig
from strategies.lines import TargetCache, TickGrid
from strategies.lines.shaping import LineShape
from strategies.models.base import ModelQuote
from strategies.types import QuoteTarget, Side


def level_spread_bps(config: PassiveLineConfig, level: int, shaped_mid_bps: float) -> float:
    """Spread of ``level`` in bps: the shaped mid spread clipped to [min, max], plus the steps."""
    base = min(max(shaped_mid_bps, config.min_spread_bps), config.max_spread_bps)
    return base + level * config.level_step_bps


class PassiveLine:
    """One passive line on one venue."""

    def __init__(self, config: PassiveLineConfig, venue: str, grid: TickGrid, rng: Random, t0: float) -> None:
        self.config = config
        self.venue = venue
        self.grid = grid
        self._targets = TargetCache(
            grid,
            venue=venue,
            line_id=config.id,
            refresh_tolerance_bps=config.refresh_tolerance_bps,
            size_tolerance=config.size_tolerance,
            min_age_s=config.min_order_age_s,
            max_age_s=config.timeout_s,
        )
        self._rng = rng
        self._t0 = t0
        self._epoch = -1
        self._noise: dict[tuple[Side, int], float] = {}
        self._quantity = float(config.quantity)

    @property
    def line_id(self) -> str:
        return self.config.id

    def epoch(self, now: float) -> int:
        return int((now - self._t0) // self.config.timeout_s)

    def next_refresh(self, now: float) -> float:
        """When the current size draw expires (the line's timeout)."""
        return self._t0 + (self.epoch(now) + 1) * self.config.timeout_s

    def _redraw(self, now: float) -> None:
        epoch = self.epoch(now)
        if epoch == self._epoch:
            return
        self._epoch = epoch
        r = self.config.randomization_factor
        uniform = self._rng.uniform
        # fixed draw order, so a seeded RNG gives the same ladder every run
        self._noise = {
            (side, level): (1.0 + uniform(-r, r)) if r > 0 else 1.0
            for side in (Side.BUY, Side.SELL)
            for level in range(self.config.levels)
        }

    def size(self, side: Side, level: int, shape: LineShape, now: float) -> float:
        self._redraw(now)
        skew = shape.skew.bid_size if side is Side.BUY else shape.skew.ask_size
        weight = self.config.weight(level)
        return self._quantity * weight * shape.size_coefficient * skew * self._noise[(side, level)]

    def quote(
        self,
        book: L2Book | None,
        reference: float,
        shape: LineShape,
        now: float,
        own_bids: Mapping[int, float] | None = None,
        own_asks: Mapping[int, float] | None = None,
        model: ModelQuote | None = None,
    ) -> list[QuoteTarget]:
        """The ladder for this venue. ``book`` (the venue's local book) is used for taker protection.

        ``model``: a pricing model's quote around ``reference`` (the line's ``pricing:``). Its
        depths replace ``mid_spread_bps`` per side and already carry the inventory (through the
        reservation price), so the inventory's spread lean is not applied again; the volume
        coefficient, the min/max bounds, the levels and the sizes apply as usual. An infinite
        depth means the model does not quote that side.
        """
        cfg = self.config
        grid = self.grid
        skew = shape.skew
        best_bid = book.best_bid() if book is not None else None
        best_ask = book.best_ask() if book is not None else None
        # taker protection: the highest bid / lowest ask we may post, in ticks
        bid_limit = _lowest(
            grid.ticks(best_ask) - 1 if best_ask is not None else None,
            min(own_asks) - 1 if own_asks else None,
        )
        ask_limit = _highest(
            grid.ticks(best_bid) + 1 if best_bid is not None else None,
            max(own_bids) + 1 if own_bids else None,
        )
        # no-loss rule: a clamp, not a skip (the level moves to the inventory price ± margin)
        bid_cap = grid.floor_ticks(skew.bid_cap) if skew.bid_cap is not None else None
        ask_floor = grid.ceil_ticks(skew.ask_floor) if skew.ask_floor is not None else None

        out: list[QuoteTarget] = []
        mid_bps = cfg.mid_spread_bps * shape.spread_coefficient
        bid_bps = mid_bps * skew.bid_spread
        ask_bps = mid_bps * skew.ask_spread
        bid_on = ask_on = True
        if model is not None:
            bid_on = not math.isinf(model.bid_depth)
            ask_on = not math.isinf(model.ask_depth)
            bid_bps = model.bid_depth / reference * 1e4 * shape.spread_coefficient if bid_on else 0.0
            ask_bps = model.ask_depth / reference * 1e4 * shape.spread_coefficient if ask_on else 0.0
        if cfg.sides.bid and skew.bid_allowed and bid_on:
            shaped = bid_bps
            for level in range(cfg.levels):
                spread = level_spread_bps(cfg, level, shaped) * shape.widen
                ticks = grid.floor_ticks(reference * (1.0 - spread * 1e-4))
                if bid_cap is not None and ticks > bid_cap:
                    ticks = bid_cap
                if bid_limit is not None and ticks > bid_limit:
                    continue  # would take: skip this level
                self._append(out, Side.BUY, level, ticks, self.size(Side.BUY, level, shape, now))
        if cfg.sides.ask and skew.ask_allowed and ask_on:
            shaped = ask_bps
            for level in range(cfg.levels):
                spread = level_spread_bps(cfg, level, shaped) * shape.widen
                ticks = grid.ceil_ticks(reference * (1.0 + spread * 1e-4))
                if ask_floor is not None and ticks < ask_floor:
                    ticks = ask_floor
                if ask_limit is not None and ticks < ask_limit:
                    continue  # would take: skip this level
                self._append(out, Side.SELL, level, ticks, self.size(Side.SELL, level, shape, now))
        return out

    def _append(self, out: list[QuoteTarget], side: Side, level: int, ticks: int, size: float) -> None:
        target = self._targets.get(side, level, ticks, size)
        if target is not None:
            out.append(target)


def _lowest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _highest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
