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
        self._draws = 0  # size draws so far: the noise behind a cached size list
        self._noise: dict[tuple[Side, int], float] = {}
        self._quantity = float(config.quantity)
        # the config is frozen: what quote() reads of it on every update, looked up once
        self._bid_side = config.sides.bid
        self._ask_side = config.sides.ask
        self._level_offsets_bps = [level * config.level_step_bps for level in range(config.levels)]
        # per side: (draws, size coefficient, inventory size factor) and the size of each level
        self._bid_sizes: tuple[tuple[int, float, float], list[float]] | None = None
        self._ask_sizes: tuple[tuple[int, float, float], list[float]] | None = None
        # the last ladder and what it was priced from (see quote)
        self._last_inputs: tuple[object, ...] | None = None
        self._last_ladder: tuple[QuoteTarget, ...] = ()

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
        self._draws += 1
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

    def _sizes(self, side: Side, shape: LineShape, now: float) -> list[float]:
        """``size`` of every level of a side; it moves only with a redraw or the size factors."""
        self._redraw(now)
        buy = side is Side.BUY
        key = (self._draws, shape.size_coefficient, shape.skew.bid_size if buy else shape.skew.ask_size)
        cached = self._bid_sizes if buy else self._ask_sizes
        if cached is not None and cached[0] == key:
            return cached[1]
        sizes = [self.size(side, level, shape, now) for level in range(self.config.levels)]
        if buy:
            self._bid_sizes = (key, sizes)
        else:
            self._ask_sizes = (key, sizes)
        return sizes

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
        # Everything below reads only these (the book and our orders through the limits, the
        # clock through the size draw's epoch): a book update that leaves them as they were
        # leaves the ladder too, and the slots' targets are the very same objects.
        inputs = (reference, shape, model, self.epoch(now), bid_limit, ask_limit)
        if inputs == self._last_inputs:
            return list(self._last_ladder)
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
        # level i: level_spread_bps(cfg, i, shaped) × widen, with the clip worked out once per side
        offsets = self._level_offsets_bps
        widen = shape.widen
        cache = self._targets
        if self._bid_side and skew.bid_allowed and bid_on:
            base = min(max(bid_bps, cfg.min_spread_bps), cfg.max_spread_bps)
            sizes: list[float] | None = None
            for level, offset in enumerate(offsets):
                spread = (base + offset) * widen
                ticks = grid.floor_ticks(reference * (1.0 - spread * 1e-4))
                if bid_cap is not None and ticks > bid_cap:
                    ticks = bid_cap
                if bid_limit is not None and ticks > bid_limit:
                    continue  # would take: skip this level
                if sizes is None:
                    sizes = self._sizes(Side.BUY, shape, now)
                target = cache.get(Side.BUY, level, ticks, sizes[level])
                if target is not None:
                    out.append(target)
        if self._ask_side and skew.ask_allowed and ask_on:
            base = min(max(ask_bps, cfg.min_spread_bps), cfg.max_spread_bps)
            sizes = None
            for level, offset in enumerate(offsets):
                spread = (base + offset) * widen
                ticks = grid.ceil_ticks(reference * (1.0 + spread * 1e-4))
                if ask_floor is not None and ticks < ask_floor:
                    ticks = ask_floor
                if ask_limit is not None and ticks < ask_limit:
                    continue  # would take: skip this level
                if sizes is None:
                    sizes = self._sizes(Side.SELL, shape, now)
                target = cache.get(Side.SELL, level, ticks, sizes[level])
                if target is not None:
                    out.append(target)
        self._last_inputs = inputs
        self._last_ladder = tuple(out)
        return out


def _lowest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _highest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
