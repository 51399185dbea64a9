"""Targets + live orders -> the fewest actions that make the venue match the targets.

Pure and synchronous: the order manager calls :func:`plan`, runs the cancels and places it
returns, and calls it again once cancels are confirmed (deferred targets then become
places). Rules it keeps:

- at most one order per slot: a slot with an order in flight (pending new, unknown,
  pending cancel) or being cancelled gets no new order in this round;
- an order whose price is within the target's refresh tolerance and whose remaining size
  is within its size tolerance stays (as does one younger than ``min_age_s``);
- never an order that would cross our own resting order on the other side: the crossing
  order is cancelled first and the new one waits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from connectors.execution.orders import OrderRecord, OrderState, Slot
from strategies.types import QuoteTarget, Side

_SETTLED = frozenset({OrderState.OPEN, OrderState.PARTIALLY_FILLED})


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
            if keeper is None and (
                fits(o, wanted_here, now_mono) or now_mono - o.created_mono < wanted_here.min_age_s
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
        placed.setdefault((target.symbol, target.side), []).append(target)
        result.place.append(target)

    result.keep = [o for o in kept if o.client_order_id in kept_ids]
    return result
