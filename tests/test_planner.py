"""The planner: fewest requests, one order per slot, never crossing our own orders."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.execution.orders import OrderRecord, OrderState
from connectors.execution.planner import fits, plan
from strategies.types import QuoteTarget, Side

D = Decimal


def target(
    side: Side, price: str, size: str = "10", level: int = 0, line: str = "tob", **kw: float | None
) -> QuoteTarget:
    return QuoteTarget("alpha", "BERA/USDT", side, D(price), D(size), line, level, **kw)  # type: ignore[arg-type]


_counter = 0


def order(
    side: Side,
    price: str,
    size: str = "10",
    level: int = 0,
    line: str = "tob",
    state: OrderState = OrderState.OPEN,
    filled: str = "0",
    created: float = 0.0,
) -> OrderRecord:
    global _counter
    _counter += 1
    return OrderRecord(
        f"mm-x-{_counter}",
        "alpha",
        "BERA/USDT",
        side,
        D(price),
        D(size),
        line,
        level,
        state,
        filled=D(filled),
        created_mono=created,
    )


def test_unchanged_targets_cost_no_requests() -> None:
    live = [order(Side.BUY, "2.000"), order(Side.SELL, "2.010")]
    decision = plan([target(Side.BUY, "2.000"), target(Side.SELL, "2.010")], live, now_mono=1.0)
    assert decision.is_empty
    assert {o.client_order_id for o in decision.keep} == {o.client_order_id for o in live}


def test_order_within_refresh_tolerance_stays_and_one_outside_is_replaced() -> None:
    near = order(Side.BUY, "2.000")
    far = order(Side.SELL, "2.100")
    decision = plan(
        [
            target(Side.BUY, "2.0008", refresh_tolerance_bps=5.0),  # 4 bps away: keep
            target(Side.SELL, "2.010", refresh_tolerance_bps=5.0),  # ~450 bps away: replace
        ],
        [near, far],
        now_mono=1.0,
    )
    assert decision.keep == [near]
    assert decision.cancel == [far]
    # The replacement waits for the cancel: never two orders in one slot.
    assert decision.place == []
    assert [t.side for t in decision.deferred] == [Side.SELL]


def test_partially_filled_order_is_replaced_only_when_its_remainder_is_too_small() -> None:
    half = order(Side.BUY, "2.000", size="10", filled="5", state=OrderState.PARTIALLY_FILLED)
    tolerant = plan([target(Side.BUY, "2.000", size_tolerance=0.6)], [half], now_mono=1.0)
    strict = plan([target(Side.BUY, "2.000", size_tolerance=0.2)], [half], now_mono=1.0)
    assert tolerant.keep == [half] and tolerant.is_empty
    assert strict.cancel == [half]


def test_young_order_keeps_its_queue_place_and_old_one_is_refreshed() -> None:
    young = order(Side.BUY, "2.000", created=9.5)
    assert plan([target(Side.BUY, "1.990", min_age_s=1.0)], [young], now_mono=10.0).is_empty
    old = order(Side.BUY, "2.000", created=0.0)
    assert plan([target(Side.BUY, "2.000", max_age_s=5.0)], [old], now_mono=10.0).cancel == [old]


def test_orders_without_a_target_are_cancelled_and_new_slots_are_placed_at_once() -> None:
    stray = order(Side.BUY, "1.900", level=3)
    decision = plan([target(Side.BUY, "2.000", level=0)], [stray], now_mono=1.0)
    assert decision.cancel == [stray]
    assert [t.level for t in decision.place] == [0]


def test_slot_with_an_order_in_flight_gets_no_second_order() -> None:
    for state in (OrderState.PENDING_NEW, OrderState.UNKNOWN, OrderState.PENDING_CANCEL):
        busy = order(Side.BUY, "1.500", state=state)
        decision = plan([target(Side.BUY, "2.000")], [busy], now_mono=1.0)
        assert decision.place == [] and decision.cancel == []
        assert len(decision.deferred) == 1


def test_bid_that_would_cross_our_own_ask_waits_for_the_ask_to_go() -> None:
    ask = order(Side.SELL, "2.000", line="passive", level=1)
    decision = plan(
        [
            target(Side.BUY, "2.001"),
            target(Side.SELL, "2.000", line="passive", level=1, refresh_tolerance_bps=10),
        ],
        [ask],
        now_mono=1.0,
    )
    assert decision.place == []
    assert decision.cancel == [ask]  # kept otherwise, but it is in the bid's way
    assert decision.keep == []
    assert [t.side for t in decision.deferred] == [Side.BUY]


def test_two_targets_that_cross_each_other_are_not_both_sent() -> None:
    decision = plan([target(Side.BUY, "2.010"), target(Side.SELL, "2.000")], [], now_mono=1.0)
    assert len(decision.place) == 1
    assert [reason for _, reason in decision.blocked] == ["crosses_own_target"]


def test_fits_needs_exact_price_when_there_is_no_tolerance() -> None:
    assert fits(order(Side.BUY, "2.000"), target(Side.BUY, "2.000"), 0.0)
    assert not fits(order(Side.BUY, "2.000"), target(Side.BUY, "2.001"), 0.0)


_prices = st.integers(min_value=1900, max_value=2100).map(lambda n: D(n) / 1000)


@settings(max_examples=300, deadline=None)
@given(
    bids=st.lists(_prices, max_size=5),
    asks=st.lists(_prices, max_size=5),
    live_bids=st.lists(_prices, max_size=5),
    live_asks=st.lists(_prices, max_size=5),
    states=st.lists(st.sampled_from([s for s in OrderState if not s.is_terminal]), min_size=10, max_size=10),
)
def test_after_any_plan_no_slot_holds_two_orders_and_no_placement_crosses_our_book(
    bids: list[Decimal],
    asks: list[Decimal],
    live_bids: list[Decimal],
    live_asks: list[Decimal],
    states: list[OrderState],
) -> None:
    targets = [target(Side.BUY, str(p), level=i) for i, p in enumerate(bids)]
    targets += [target(Side.SELL, str(p), level=i) for i, p in enumerate(asks)]
    live = [order(Side.BUY, str(p), level=i, state=states[i]) for i, p in enumerate(live_bids)]
    live += [order(Side.SELL, str(p), level=i, state=states[5 + i]) for i, p in enumerate(live_asks)]
    decision = plan(targets, live, now_mono=1.0)

    cancelled = {o.client_order_id for o in decision.cancel}
    remaining = [o for o in live if o.client_order_id not in cancelled]
    # One order per slot after this round: placements only go to empty slots.
    occupied = {o.slot for o in remaining} | {o.slot for o in decision.cancel}
    placed_slots = [t.slot for t in decision.place]
    assert len(placed_slots) == len(set(placed_slots))
    assert not set(placed_slots) & occupied
    # No placement crosses anything of ours that may still rest (cancels not yet confirmed).
    for t in decision.place:
        for o in live:
            if o.side is not t.side:
                assert not (o.price <= t.price if t.side is Side.BUY else o.price >= t.price)
        for other in decision.place:
            if other.side is not t.side:
                assert not (other.price <= t.price if t.side is Side.BUY else other.price >= t.price)
