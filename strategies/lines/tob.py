"""Top-of-book (TOB) lines: best bid + one tick and best ask − one tick, held inside a zone.

Pricing of the bid on one venue (the ask mirrors it), all in whole ticks:

1. ``want = best_bid + 1 tick``.
2. Taker protection: the bid must stay below the book's best ask and below our own resting
   asks, so ``want`` is capped at ``min(best_ask, own_ask) − 1 tick``. With a one-tick spread
   that cap is the best bid itself: we *join* the best bid rather than skip.
3. Zone: the bid is clamped into ``[ref·(1 − max_zone), ref·(1 − min_zone)]`` (edges rounded
   inward to the grid, so a clamped price never leaves the zone), where the zone bps are
   scaled by the line's spread coefficient (volume) and the inventory's bid spread factor.
   The optional no-loss rule lowers the upper edge to the inventory price cap.
4. If the zone is empty on the grid, or clamping up to the zone's far edge would reach the
   taker cap, the side is not quoted (never cross to stay in the zone).

Size pacing: each order is ``hourly_quantity · timeout_s / 3600`` (one timeout's share of the
hourly rate) times the size coefficients; and the quantity filled on a side over the last
rolling hour never exceeds ``hourly_quantity``: the order is cut to the remaining budget and
the side pauses when it is spent (``next_release`` says when it frees up).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from strategies.book import L2Book
from strategies.config import TobLineConfig
from strategies.lines import TargetCache, TickGrid
from strategies.lines.shaping import LineShape
from strategies.types import QuoteTarget, Side

_HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class Zone:
    """A side's allowed price range in ticks, inclusive; empty when ``lo > hi``."""

    lo: int
    hi: int

    @property
    def empty(self) -> bool:
        return self.lo > self.hi


def bid_zone(grid: TickGrid, reference: float, min_bps: float, max_bps: float, cap: float | None) -> Zone:
    """Bid zone [ref·(1 − max), ref·(1 − min)] rounded inward, upper edge capped by ``cap``."""
    return Zone(*_bid_edges(grid, reference, min_bps, max_bps, cap))


def ask_zone(grid: TickGrid, reference: float, min_bps: float, max_bps: float, floor: float | None) -> Zone:
    """Ask zone [ref·(1 + min), ref·(1 + max)] rounded inward, lower edge raised to ``floor``."""
    return Zone(*_ask_edges(grid, reference, min_bps, max_bps, floor))


def _bid_edges(
    grid: TickGrid, reference: float, min_bps: float, max_bps: float, cap: float | None
) -> tuple[int, int]:
    hi = grid.floor_ticks(reference * (1.0 - min_bps * 1e-4))
    if cap is not None:
        hi = min(hi, grid.floor_ticks(cap))
    return grid.ceil_ticks(reference * (1.0 - max_bps * 1e-4)), hi


def _ask_edges(
    grid: TickGrid, reference: float, min_bps: float, max_bps: float, floor: float | None
) -> tuple[int, int]:
    lo = grid.ceil_ticks(reference * (1.0 + min_bps * 1e-4))
    if floor is not None:
        lo = max(lo, grid.ceil_ticks(floor))
    return lo, grid.floor_ticks(reference * (1.0 + max_bps * 1e-4))


def tob_bid_ticks(best_bid: int, best_ask: int | None, own_ask: int | None, zone: Zone) -> int | None:
    """The TOB bid in ticks (steps 1–4 of the module docstring), or None to skip the side."""
    cap = best_ask - 1 if best_ask is not None else None
    if own_ask is not None:
        cap = own_ask - 1 if cap is None else min(cap, own_ask - 1)
    return _bid_in_zone(best_bid, cap, zone.lo, zone.hi)


def tob_ask_ticks(best_ask: int, best_bid: int | None, own_bid: int | None, zone: Zone) -> int | None:
    """The TOB ask in ticks (mirror of :func:`tob_bid_ticks`), or None to skip the side."""
    floor = best_bid + 1 if best_bid is not None else None
    if own_bid is not None:
        floor = own_bid + 1 if floor is None else max(floor, own_bid + 1)
    return _ask_in_zone(best_ask, floor, zone.lo, zone.hi)


def _bid_in_zone(best_bid: int, cap: int | None, lo: int, hi: int) -> int | None:
    """Steps 1, 3 and 4 for a bid under the taker ``cap`` (step 2), in the zone [lo, hi]."""
    want = best_bid + 1
    if cap is not None and want > cap:
        want = cap
    if lo > hi:
        return None
    price = min(max(want, lo), hi)
    if cap is not None and price > cap:
        return None
    return price


def _ask_in_zone(best_ask: int, floor: int | None, lo: int, hi: int) -> int | None:
    """Mirror of :func:`_bid_in_zone` for an ask above the taker ``floor``."""
    want = best_ask - 1
    if floor is not None and want < floor:
        want = floor
    if lo > hi:
        return None
    price = min(max(want, lo), hi)
    if floor is not None and price < floor:
        return None
    return price


class HourlyPacer:
    """Fills of one side over a rolling hour, against the hourly quantity budget."""

    __slots__ = ("_filled", "_fills", "hourly_quantity")

    def __init__(self, hourly_quantity: float) -> None:
        self.hourly_quantity = hourly_quantity
        self._fills: deque[tuple[float, float]] = deque()
        self._filled = 0.0

    def record(self, ts: float, qty: float) -> None:
        self._fills.append((ts, qty))
        self._filled += qty

    def _expire(self, now: float) -> None:
        fills = self._fills
        while fills and fills[0][0] <= now - _HOUR_S:
            self._filled -= fills.popleft()[1]
        if not fills:
            self._filled = 0.0  # drop float residue

    def remaining(self, now: float) -> float:
        """Quantity this side may still fill in the current rolling hour."""
        self._expire(now)
        return max(0.0, self.hourly_quantity - self._filled)

    def filled(self, now: float) -> float:
        self._expire(now)
        return self._filled

    def next_release(self, now: float) -> float | None:
        """When the oldest fill leaves the window (only interesting while the budget is spent)."""
        self._expire(now)
        if not self._fills or self._filled < self.hourly_quantity:
            return None
        return self._fills[0][0] + _HOUR_S


class TobLine:
    """One TOB line on one venue: targets from the venue's local book."""

    def __init__(self, config: TobLineConfig, venue: str, grid: TickGrid) -> None:
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
        hourly = float(config.hourly_quantity)
        self.order_size = hourly * config.timeout_s / _HOUR_S
        self._bid_pacer = HourlyPacer(hourly)
        self._ask_pacer = HourlyPacer(hourly)
        # the config is frozen: what quote() reads of it on every update, looked up once
        self._bid_side = config.sides.bid
        self._ask_side = config.sides.ask

    @property
    def line_id(self) -> str:
        return self.config.id

    def on_fill(self, side: Side, qty: float, ts: float) -> None:
        (self._bid_pacer if side is Side.BUY else self._ask_pacer).record(ts, qty)

    def next_release(self, now: float) -> float | None:
        times = [t for p in (self._bid_pacer, self._ask_pacer) if (t := p.next_release(now)) is not None]
        return min(times) if times else None

    def size(self, side: Side, shape: LineShape, now: float) -> float:
        """Order size for a side: paced base size × coefficients, cut to the hourly budget."""
        if side is Side.BUY:
            skew, pacer = shape.skew.bid_size, self._bid_pacer
        else:
            skew, pacer = shape.skew.ask_size, self._ask_pacer
        return min(self.order_size * shape.size_coefficient * skew, pacer.remaining(now))

    def quote(
        self,
        book: L2Book,
        reference: float,
        shape: LineShape,
        now: float,
        own_bids: Mapping[int, float] | None = None,
        own_asks: Mapping[int, float] | None = None,
        pending_bids: Mapping[int, float] | None = None,
        pending_asks: Mapping[int, float] | None = None,
    ) -> list[QuoteTarget]:
        """The line's targets for this venue.

        ``own_bids``/``own_asks``: our resting quantity per price (in ticks) on this market.
        Levels that hold only our own orders are not "the market": stepping one tick ahead
        of ourselves would walk the price up on every update, so the local best bid/ask is
        the best level holding someone else's quantity. Our best resting ask also caps the
        bid (and vice versa): we never trade with ourselves. ``pending_*``: our latest
        targets, which may rest already without being reported yet; they count as ours when
        finding the market's best level, but do not cap (they are about to be replaced).
        """
        cfg = self.config
        grid = self.grid
        skew = shape.skew
        own_bids = own_bids or {}
        own_asks = own_asks or {}
        out: list[QuoteTarget] = []
        if self._bid_side and skew.bid_allowed:
            bb = _others_best(book.bid_levels(), grid, own_bids, pending_bids)
            if bb is not None:
                f = shape.spread_coefficient * skew.bid_spread * shape.widen
                lo, hi = _bid_edges(grid, reference, cfg.min_zone_bps * f, cfg.max_zone_bps * f, skew.bid_cap)
                # taker protection uses the full book: our own orders are on it too
                best_ask = book.best_ask()
                book_ask = grid.ticks(best_ask) if best_ask is not None else None
                ask_cap = _lowest(book_ask, min(own_asks) if own_asks else None)
                ticks = _bid_in_zone(bb, ask_cap - 1 if ask_cap is not None else None, lo, hi)
                if ticks is not None:
                    self._append(out, Side.BUY, ticks, self.size(Side.BUY, shape, now))
        if self._ask_side and skew.ask_allowed:
            ba = _others_best(book.ask_levels(), grid, own_asks, pending_asks)
            if ba is not None:
                f = shape.spread_coefficient * skew.ask_spread * shape.widen
                floor = skew.ask_floor
                lo, hi = _ask_edges(grid, reference, cfg.min_zone_bps * f, cfg.max_zone_bps * f, floor)
                best_bid = book.best_bid()
                book_bid = grid.ticks(best_bid) if best_bid is not None else None
                bid_floor = _highest(book_bid, max(own_bids) if own_bids else None)
                ticks = _ask_in_zone(ba, bid_floor + 1 if bid_floor is not None else None, lo, hi)
                if ticks is not None:
                    self._append(out, Side.SELL, ticks, self.size(Side.SELL, shape, now))
        return out

    def _append(self, out: list[QuoteTarget], side: Side, ticks: int, size: float) -> None:
        target = self._targets.get(side, 0, ticks, size)
        if target is not None:
            out.append(target)


def _others_best(
    levels: Iterator[tuple[float, float]],
    grid: TickGrid,
    own: Mapping[int, float],
    pending: Mapping[int, float] | None,
) -> int | None:
    """Ticks of the best level holding more than our own quantity there: what rests, or what
    our pending targets put there if more."""
    for price, qty in levels:
        ticks = grid.ticks(price)
        mine = own.get(ticks)
        if pending:
            wanted = pending.get(ticks)
            if wanted is not None and (0.0 if mine is None else mine) < wanted:
                mine = wanted
        if mine is None or qty > mine * (1.0 + 1e-9):
            return ticks
    return None


def _lowest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _highest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
