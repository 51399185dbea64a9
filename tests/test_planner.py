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
    young = order(Side.BUY, "1.990", created=9.5)
    assert plan([target(Side.BUY, "2.000", min_age_s=1.0)], [young], now_mono=10.0).is_empty
    old = order(Side.BUY, "2.000", created=0.0)
    assert plan([target(Side.BUY, "2.000", max_age_s=5.0)], [old], now_mono=10.0).cancel == [old]


def test_young_order_resting_through_its_new_target_is_cancelled_at_once() -> None:
    # A fast move down: the young bid at 2.000 now rests above the new target bid 1.990.
    young_bid = order(Side.BUY, "2.000", created=9.5)
    young_ask = order(Side.SELL, "2.020", created=9.5)  # the new ask target 2.030 is above it
    decision = plan(
        [target(Side.BUY, "1.990", min_age_s=1.0), target(Side.SELL, "2.030", min_age_s=1.0)],
        [young_bid, young_ask],
        now_mono=10.0,
    )
    assert decision.cancel == [young_bid, young_ask]
    assert decision.keep == []


def test_young_order_less_aggressive_than_its_target_is_kept_on_both_sides() -> None:
    young_bid = order(Side.BUY, "1.980", created=9.5)
    young_ask = order(Side.SELL, "2.040", created=9.5)
    decision = plan(
        [target(Side.BUY, "1.990", min_age_s=1.0), target(Side.SELL, "2.030", min_age_s=1.0)],
        [young_bid, young_ask],
        now_mono=10.0,
    )
    assert decision.is_empty and decision.keep == [young_bid, young_ask]


def test_young_order_that_would_cross_our_own_opposite_target_is_cancelled() -> None:
    # The bid is behind its own target (2.050), but our new ask at 2.000 sits below it:
    # keeping it would leave our bid through our own ask.
    young_bid = order(Side.BUY, "2.010", created=9.5)
    decision = plan(
        [
            target(Side.BUY, "2.050", min_age_s=1.0, line="passive"),
            target(Side.SELL, "2.000", min_age_s=1.0),
        ],
        [young_bid],
        now_mono=10.0,
    )
    assert decision.cancel == [young_bid]
    assert decision.keep == []


def test_orders_without_a_target_are_cancelled_and_new_slots_are_placed_at_once() -> None:
    stray = order(Side.SELL, "2.100", level=3)
    decision = plan([target(Side.BUY, "2.000", level=0)], [stray], now_mono=1.0)
    assert decision.cancel == [stray]
    assert [t.level for t in decision.place] == [0]


def test_a_new_bid_waits_for_a_stray_bid_to_go_when_together_they_exceed_the_targets() -> None:
    stray = order(Side.BUY, "1.900", level=3)
    decision = plan([target(Side.BUY, "2.000", level=0)], [stray], now_mono=1.0)
    assert decision.cancel == [stray]
    assert decision.place == [] and [t.level for t in decision.deferred] == [0]


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


def test_a_new_slot_waits_while_orders_on_their_way_out_would_exceed_the_side_total() -> None:
    # The risk limit shrank the bids: 40 at level 0 becomes 5, and level 1 (5) is new. Both
    # sent now, 40 + 5 could fill before the cancel lands; the targets only allow 10.
    big = order(Side.BUY, "2.000", size="40", level=0)
    decision = plan(
        [target(Side.BUY, "2.000", size="5", level=0), target(Side.BUY, "1.990", size="5", level=1)],
        [big],
        now_mono=1.0,
    )
    assert decision.cancel == [big]
    assert decision.place == []
    assert sorted(t.level for t in decision.deferred) == [0, 1]
    # Once the cancel is confirmed, both go at once.
    after = plan(
        [target(Side.BUY, "2.000", size="5", level=0), target(Side.BUY, "1.990", size="5", level=1)],
        [],
        now_mono=1.0,
    )
    assert sorted(t.level for t in after.place) == [0, 1]


def test_a_moving_ladder_places_new_slots_at_once_when_sizes_allow() -> None:
    old = [order(Side.BUY, "2.000", level=0), order(Side.BUY, "1.990", level=1)]
    decision = plan(
        [target(Side.BUY, price, level=level) for level, price in enumerate(["2.010", "2.000", "1.990"])],
        old,
        now_mono=1.0,
    )
    assert decision.cancel == old
    assert [t.level for t in decision.place] == [2]  # 10 + 10 may rest, 30 wanted: room for it
    assert [t.level for t in decision.deferred] == [0, 1]


def test_two_targets_that_cross_each_other_are_not_both_sent() -> None:
    decision = plan([target(Side.BUY, "2.010"), target(Side.SELL, "2.000")], [], now_mono=1.0)
    assert len(decision.place) == 1
    assert [reason for _, reason in decision.blocked] == ["crosses_own_target"]


def test_fits_needs_exact_price_when_there_is_no_tolerance() -> None:
    assert fits(order(Side.BUY, "2.000"), target(Side.BUY, "2.000"), 0.0)
    assert not fits(order(Side.BUY, "2.000"), target(Side.BUY, "2.001"), 0.0)


@settings(max_examples=300, deadline=None)
@given(
    live=st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1900, 2100), st.integers(0, 3)),
        max_size=8,
    ),
    wanted=st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1900, 2100), st.integers(0, 3)),
        max_size=8,
    ),
    ages=st.lists(st.floats(0.0, 2.0), min_size=8, max_size=8),
)
def test_a_kept_order_is_never_more_aggressive_than_its_target_nor_through_our_other_side(
    live: list[tuple[Side, int, int]], wanted: list[tuple[Side, int, int]], ages: list[float]
) -> None:
    now = 10.0
    orders = [
        order(side, str(D(p) / 1000), level=lvl, created=now - ages[i])
        for i, (side, p, lvl) in enumerate(live)
    ]
    targets = [target(side, str(D(p) / 1000), level=lvl, min_age_s=1.0) for side, p, lvl in wanted]
    first = {t.slot: t for t in reversed(targets)}  # the planner takes the first target per slot
    decision = plan(targets, orders, now_mono=now)
    for kept in decision.keep:
        goal = first[kept.slot]
        if kept.price == goal.price:
            continue  # an exact fit: the targets themselves decide where it rests
        assert kept.price < goal.price if kept.side is Side.BUY else kept.price > goal.price
        for other in first.values():
            if other.side is not kept.side:
                assert not (other.price <= kept.price if kept.side is Side.BUY else other.price >= kept.price)


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
    # What may rest on a side after this round never exceeds what its targets ask for.
    for side in (Side.BUY, Side.SELL):
        new = sum((t.size for t in decision.place if t.side is side), D(0))
        if new:
            wanted = sum((t.size for t in targets if t.side is side), D(0))
            assert sum((o.remaining for o in live if o.side is side), D(0)) + new <= wanted
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
