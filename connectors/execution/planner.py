"""Targets + live orders -> the fewest actions that make the venue match the targets.

Pure and synchronous: the order manager calls :func:`plan`, runs the cancels and places it
returns, and calls it again once cancels are confirmed (deferred targets then become
places). Rules it keeps:

- at most one order per slot: a slot with an order in flight (pending new, unknown,
  pending cancel) or being cancelled gets no new order in this round;
- an order whose price is within the target's refresh tolerance and whose remaining size
  is within its size tolerance stays;
- an order younger than ``min_age_s`` keeps its queue place only while it is no more
  aggressive than its new target (a bid at or below the target bid, an ask at or above the
  target ask) and does not cross any of our own new targets on the other side: after a
  fast move, a young order resting through the reference is a risk, not a queue place;
- never an order that would cross our own resting order on the other side: the crossing
  order is cancelled first and the new one waits;
- never more on one side of a market than the targets ask for: everything that may still
  rest there (kept orders, orders being cancelled, creates in flight) plus the new orders
  stays within the sum of the side's target sizes (a kept order counting for its slot with
  what it has left). A new order that would go beyond waits for the cancels, so a risk
  limit that bounds the targets also bounds what can be filled at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from connectors.execution.orders import OrderRecord, OrderState, Slot
from strategies.types import QuoteTarget, Side

_SETTLED = frozenset({OrderState.OPEN, OrderState.PARTIALLY_FILLED})
_ZERO = Decimal(0)


@dataclass(slots=True)
class Plan:
    """What to do now. ``deferred`` targets wait for this round's cancels; ``blocked`` ones
    were refused outright (reason given)."""

    cancel: list[OrderRecord] = field(default_factory=list)
    place: list[QuoteTarget] = field(default_factory=list)
    keep: list[OrderRecord] = field(default_factory=list)
    deferred: list[QuoteTarget] = field(default_factory=list)
    blocked: list[tuple[QuoteTarget, str]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.cancel or self.place)


def fits(order: OrderRecord, target: QuoteTarget, now_mono: float) -> bool:
    """True if ``order`` is close enough to ``target`` to leave it resting."""
    if order.price != target.price:
        tolerance = target.refresh_tolerance_bps
        if tolerance <= 0 or abs(float(order.price - target.price)) * 1e4 > tolerance * float(target.price):
            return False
    remaining = order.remaining
    if remaining != target.size and abs(float(remaining - target.size)) > target.size_tolerance * float(
        target.size
    ):
        return False
    return target.max_age_s is None or now_mono - order.created_mono <= target.max_age_s


def _crosses(side: Side, price: Decimal, other_price: Decimal) -> bool:
    # A bid at p crosses our ask at a <= p; an ask at p crosses our bid at b >= p.
    return other_price <= price if side is Side.BUY else other_price >= price


def young_and_safe(
    order: OrderRecord, target: QuoteTarget, opposite: Sequence[QuoteTarget], now_mono: float
) -> bool:
    """True if ``order`` may keep its queue place although it no longer fits ``target``:
    younger than the target's ``min_age_s``, no more aggressive than the target, and not
    crossing any of our new ``opposite``-side targets."""
    if now_mono - order.created_mono >= target.min_age_s:
        return False
    if order.price > target.price if order.side is Side.BUY else order.price < target.price:
        return False  # the market moved against it: it now rests through the new quote
    return not any(_crosses(order.side, order.price, t.price) for t in opposite)


def plan(targets: Sequence[QuoteTarget], live: Iterable[OrderRecord], now_mono: float) -> Plan:
    """Decide cancels and places for one venue. ``live`` are our non-terminal orders."""
    result = Plan()
    by_slot: dict[Slot, list[OrderRecord]] = {}
    for order in live:
        if not order.state.is_terminal:
            by_slot.setdefault(order.slot, []).append(order)
    wanted: dict[Slot, QuoteTarget] = {}
    for target in targets:
        wanted.setdefault(target.slot, target)
    by_side: dict[tuple[str, Side], list[QuoteTarget]] = {}
    for target in wanted.values():
        by_side.setdefault((target.symbol, target.side), []).append(target)

    cancel_ids: set[str] = set()
    kept: list[OrderRecord] = []

    for slot, orders in by_slot.items():
        wanted_here = wanted.get(slot)
        settled = [o for o in orders if o.state in _SETTLED]
        in_flight = len(settled) != len(orders)
        if wanted_here is None:
            for o in settled:
                cancel_ids.add(o.client_order_id)
                result.cancel.append(o)
            continue
        keeper: OrderRecord | None = None
        for o in settled:
            opposite = by_side.get((o.symbol, o.side.opposite), [])
            if keeper is None and (
                fits(o, wanted_here, now_mono) or young_and_safe(o, wanted_here, opposite, now_mono)
            ):
                keeper = o
            else:
                cancel_ids.add(o.client_order_id)
                result.cancel.append(o)
        if keeper is not None:
            kept.append(keeper)
        elif in_flight or settled:
            result.deferred.append(wanted_here)  # the slot frees once the venue confirms
    candidates = [t for slot, t in wanted.items() if slot not in by_slot]

    # Per (symbol, side): what the targets allow to rest, and what may rest already.
    allowance: dict[tuple[str, Side], Decimal] = {}
    kept_by_slot = {o.slot: o for o in kept}
    for slot, target in wanted.items():
        keeper = kept_by_slot.get(slot)
        size = keeper.remaining if keeper is not None else target.size
        allowance[(target.symbol, target.side)] = allowance.get((target.symbol, target.side), _ZERO) + size
    committed: dict[tuple[str, Side], Decimal] = {}
    for orders in by_slot.values():
        for o in orders:
            committed[(o.symbol, o.side)] = committed.get((o.symbol, o.side), _ZERO) + o.remaining

    # Everything of ours that may rest on the book after this round's requests go out,
    # by (symbol, side). Orders being cancelled count too: they rest until confirmed.
    resting: dict[tuple[str, Side], list[OrderRecord]] = {}
    for orders in by_slot.values():
        for o in orders:
            resting.setdefault((o.symbol, o.side), []).append(o)
    placed: dict[tuple[str, Side], list[QuoteTarget]] = {}
    kept_ids = {o.client_order_id for o in kept}

    for target in candidates:
        key = (target.symbol, target.side.opposite)
        crossing = [o for o in resting.get(key, ()) if _crosses(target.side, target.price, o.price)]
        if any(_crosses(target.side, target.price, t.price) for t in placed.get(key, ())):
            result.blocked.append((target, "crosses_own_target"))
            continue
        if crossing:
            for o in crossing:
                if o.client_order_id in kept_ids:
                    kept_ids.discard(o.client_order_id)
                    cancel_ids.add(o.client_order_id)
                    result.cancel.append(o)
            result.deferred.append(target)
            continue
        own = (target.symbol, target.side)
        if committed.get(own, _ZERO) + target.size > allowance.get(own, _ZERO):
            result.deferred.append(target)  # orders on their way out still count: wait for them
            continue
        committed[own] = committed.get(own, _ZERO) + target.size
        placed.setdefault(own, []).append(target)
        result.place.append(target)

    result.keep = [o for o in kept if o.client_order_id in kept_ids]
    return result
