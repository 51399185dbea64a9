"""Invariants of the matching engine over arbitrary sequences of places, cancels and matches."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.paper.engine import MatchingEngine, OrderRejected, OrderType, SymbolSpec, TimeInForce
from strategies.clock import ManualClock
from strategies.types import Side

D = Decimal
SPEC = SymbolSpec("BERA/BTC", "BERA", "BTC", D("0.00000001"), D("0.01"), D("0.01"), D("0.0001"))
ACCOUNTS = ("a", "b", "c")
# Small enough that some orders bounce for balance, large enough that most go through.
FUNDING = {"BERA": D("5000"), "BTC": D("0.2")}

place_op = st.tuples(
    st.just("place"),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(list(Side)),
    st.sampled_from(
        [
            (OrderType.LIMIT, TimeInForce.GTC),
            (OrderType.LIMIT, TimeInForce.GTC),
            (OrderType.LIMIT, TimeInForce.IOC),
            (OrderType.LIMIT, TimeInForce.FOK),
            (OrderType.LIMIT_MAKER, TimeInForce.GTC),
            (OrderType.MARKET, TimeInForce.GTC),
        ]
    ),
    st.integers(2590, 2610),  # price in ticks around 0.000026
    st.integers(1, 40_000),  # qty in steps
)
cancel_op = st.tuples(st.just("cancel"), st.sampled_from(ACCOUNTS), st.integers(0, 1000))
ops = st.lists(st.one_of(place_op, place_op, cancel_op), min_size=20, max_size=150)


def check_invariants(engine: MatchingEngine) -> None:
    bids, asks, _ = engine.depth(SPEC.symbol, limit=10_000)
    if bids and asks:
        assert bids[0][0] < asks[0][0], "book crossed"

    totals: dict[str, Decimal] = defaultdict(Decimal)
    for account in ACCOUNTS:
        expected_locked: dict[str, Decimal] = defaultdict(Decimal)
        level_qty: dict[tuple[Side, Decimal], Decimal] = defaultdict(Decimal)
        for order in engine.open_orders(account, SPEC.symbol):
            assert order.price is not None
            if order.side is Side.BUY:
                expected_locked["BTC"] += order.price * order.remaining
            else:
                expected_locked["BERA"] += order.remaining
            level_qty[(order.side, order.price)] += order.remaining
        for asset, bal in engine.balances(account).items():
            assert bal.free >= 0, (account, asset, bal)
            assert bal.locked == expected_locked[asset], (account, asset, bal)
            totals[asset] += bal.free + bal.locked
    for asset, funded in FUNDING.items():
        assert totals[asset] + engine.fees.get(asset, D(0)) == funded * len(ACCOUNTS), asset


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_balances_are_conserved_locks_match_open_orders_and_the_book_never_crosses(
    sequence: list[tuple],
) -> None:
    engine = MatchingEngine([SPEC], ManualClock(), maker_fee=D("0.001"), taker_fee=D("0.00075"))
    for account in ACCOUNTS:
        for asset, amount in FUNDING.items():
            engine.deposit(account, asset, amount)

    for op in sequence:
        if op[0] == "place":
            _, account, side, (type_, tif), ticks, steps = op
            price = None if type_ is OrderType.MARKET else SPEC.tick * ticks
            try:
                order, executions = engine.place(
                    account, SPEC.symbol, side, type_, SPEC.step * steps, price, tif
                )
            except OrderRejected:
                continue
            for ex in executions:
                maker_price = ex.maker_order.price
                assert ex.price == maker_price, "a fill is always at the maker's price"
                assert ex.maker_order.side is side.opposite
                if price is not None:
                    assert (ex.price <= price) if side is Side.BUY else (ex.price >= price)
            assert order.filled == sum((ex.qty for ex in executions), D(0))
        else:
            _, account, pick = op
            open_orders = engine.open_orders(account, SPEC.symbol)
            if open_orders:
                engine.cancel(account, SPEC.symbol, order_id=open_orders[pick % len(open_orders)].order_id)
        check_invariants(engine)
