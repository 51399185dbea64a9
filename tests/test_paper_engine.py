"""The paper venue's matching engine: priority, balances, fees, filters, order lifecycles, events."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from connectors.paper.engine import (
    Balance,
    BookChange,
    Execution,
    MatchingEngine,
    Order,
    OrderRejected,
    OrderStatus,
    OrderType,
    RejectReason,
    SymbolSpec,
    TimeInForce,
)
from strategies.clock import ManualClock
from strategies.types import Side

D = Decimal
BERA = SymbolSpec("BERA/USDT", "BERA", "USDT", D("0.0001"), D("0.01"), D("0.01"), D("5"))
BTC = SymbolSpec("BTC/USDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.00001"), D("5"))
SYM = BERA.symbol
LIMIT = OrderType.LIMIT


class Recorder:
    """An engine listener that keeps everything it is told."""

    def __init__(self) -> None:
        self.changes: list[BookChange] = []
        self.trades: list[Execution] = []
        self.orders: list[tuple[Order, Execution | None]] = []
        self.balances: list[tuple[str, dict[str, Balance]]] = []

    def on_book_change(self, change: BookChange) -> None:
        self.changes.append(change)

    def on_trade(self, execution: Execution) -> None:
        self.trades.append(execution)

    def on_order_update(self, order: Order, execution: Execution | None) -> None:
        self.orders.append((order, execution))

    def on_balance_update(self, account: str, assets: dict[str, Balance]) -> None:
        self.balances.append((account, assets))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine(clock: ManualClock) -> MatchingEngine:
    eng = MatchingEngine([BERA, BTC], clock, maker_fee=D("0.001"), taker_fee=D("0.002"))
    for account in ("maker", "taker"):
        eng.deposit(account, "USDT", D("100000"))
        eng.deposit(account, "BERA", D("100000"))
        eng.deposit(account, "BTC", D("10"))
    return eng


def bal(engine: MatchingEngine, account: str, asset: str) -> Balance:
    return engine.balances(account)[asset]


# ------------------------------------------------------------------ balances and fills


def test_limit_buy_rests_and_locks_its_notional_in_quote(engine: MatchingEngine) -> None:
    order, execs = engine.place("maker", SYM, Side.BUY, LIMIT, D("100.00"), D("2.5000"))

    assert execs == []
    assert order.status is OrderStatus.NEW
    assert bal(engine, "maker", "USDT") == Balance(D("99750"), D("250"))
    assert engine.depth(SYM) == ([(D("2.5000"), D("100.00"))], [], 1)


def test_limit_sell_locks_base_and_cancel_unlocks_the_remainder(engine: MatchingEngine) -> None:
    sell, _ = engine.place("maker", SYM, Side.SELL, LIMIT, D("100.00"), D("2.6000"))
    engine.place("taker", SYM, Side.BUY, LIMIT, D("30.00"), D("2.6000"))
    assert bal(engine, "maker", "BERA").locked == D("70")

    canceled = engine.cancel("maker", SYM, order_id=sell.order_id)

    assert canceled.status is OrderStatus.CANCELED
    assert canceled.filled == D("30")
    assert bal(engine, "maker", "BERA") == Balance(D("99970"), D("0"))
    assert engine.depth(SYM)[:2] == ([], [])


def test_fill_is_at_the_makers_price_and_a_buy_taker_gets_the_improvement_back(
    engine: MatchingEngine,
) -> None:
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    order, execs = engine.place("taker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.7000"))

    assert [e.price for e in execs] == [D("2.5000")]
    assert order.status is OrderStatus.FILLED
    assert order.cum_quote == D("25")
    # Paid 25 at the maker's price, not the 27 it locked; nothing stays locked.
    assert bal(engine, "taker", "USDT") == Balance(D("99975"), D("0"))


def test_resting_remainder_of_a_buy_keeps_only_its_own_notional_locked(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    order, _ = engine.place("taker", SYM, Side.BUY, LIMIT, D("30.00"), D("2.7000"))

    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert bal(engine, "taker", "USDT") == Balance(D("100000") - D("25") - D("54"), D("54"))
    assert engine.depth(SYM)[0] == [(D("2.7000"), D("20.00"))]


def test_fees_are_charged_on_the_received_asset_at_maker_and_taker_rates(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.BUY, LIMIT, D("100.00"), D("2.5000"))
    _, (ex,) = engine.place("taker", SYM, Side.SELL, LIMIT, D("100.00"), D("2.5000"))

    # Maker bought 100 BERA: receives base, pays the maker rate (0.1 %) in BERA.
    assert (ex.maker_fee, ex.maker_fee_asset) == (D("0.1"), "BERA")
    # Taker sold for 250 USDT: receives quote, pays the taker rate (0.2 %) in USDT.
    assert (ex.taker_fee, ex.taker_fee_asset) == (D("0.5"), "USDT")
    assert bal(engine, "maker", "BERA").free == D("100099.9")
    assert bal(engine, "maker", "USDT") == Balance(D("99750"), D("0"))
    assert bal(engine, "taker", "USDT").free == D("100249.5")
    assert engine.fees == {"BERA": D("0.1"), "USDT": D("0.5")}


def test_quote_amounts_are_exact_decimals_not_floats(engine: MatchingEngine) -> None:
    engine.place("maker", BTC.symbol, Side.SELL, LIMIT, D("0.00007"), D("95123.45"))
    _, (ex,) = engine.place("taker", BTC.symbol, Side.BUY, LIMIT, D("0.00007"), D("95123.45"))

    assert ex.quote_qty == D("6.6586415")
    assert ex.taker_fee == D("0.00000014")  # 0.2 % of 0.00007 BTC, exactly
    assert bal(engine, "taker", "BTC").free == D("10.00006986")


def test_orders_at_one_price_fill_in_time_priority(engine: MatchingEngine, clock: ManualClock) -> None:
    first, _ = engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    clock.advance(1)
    second, _ = engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    _, execs = engine.place("taker", SYM, Side.BUY, LIMIT, D("15.00"), D("2.5000"))

    fills = [(e.maker_order.order_id, e.qty) for e in execs]
    assert fills == [(first.order_id, D("10")), (second.order_id, D("5"))]
    assert engine.get_order("maker", SYM, second.order_id).status is OrderStatus.PARTIALLY_FILLED


def test_better_prices_fill_before_earlier_orders(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5100"))
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    _, execs = engine.place("taker", SYM, Side.BUY, LIMIT, D("20.00"), D("2.5100"))

    assert [e.price for e in execs] == [D("2.5000"), D("2.5100")]


# ------------------------------------------------------------------ order types


def test_market_buy_sweeps_levels_and_pays_exactly_what_it_took(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5100"))
    order, execs = engine.place("taker", SYM, Side.BUY, OrderType.MARKET, D("15.00"))

    assert order.status is OrderStatus.FILLED
    assert order.price is None
    assert order.cum_quote == D("37.55")
    assert bal(engine, "taker", "USDT") == Balance(D("100000") - D("37.55"), D("0"))
    assert [e.qty for e in execs] == [D("10"), D("5")]


def test_market_order_larger_than_the_book_fills_what_exists_and_expires(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.5000"))
    order, execs = engine.place("taker", SYM, Side.SELL, OrderType.MARKET, D("25.00"))

    assert order.status is OrderStatus.EXPIRED
    assert order.filled == D("10")
    assert [e.price for e in execs] == [D("2.5000")]
    assert bal(engine, "taker", "BERA") == Balance(D("99990"), D("0"))


def test_market_buy_the_account_cannot_pay_for_is_rejected_whole(engine: MatchingEngine) -> None:
    engine.deposit("poor", "USDT", D("20"))
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))

    with pytest.raises(OrderRejected) as err:
        engine.place("poor", SYM, Side.BUY, OrderType.MARKET, D("10.00"))

    assert err.value.reason is RejectReason.INSUFFICIENT_BALANCE
    assert engine.depth(SYM)[1] == [(D("2.5000"), D("10.00"))]


def test_ioc_remainder_expires_and_its_lock_is_released(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    order, execs = engine.place("taker", SYM, Side.BUY, LIMIT, D("30.00"), D("2.5000"), TimeInForce.IOC)

    assert order.status is OrderStatus.EXPIRED
    assert len(execs) == 1
    assert bal(engine, "taker", "USDT") == Balance(D("99975"), D("0"))
    assert engine.depth(SYM)[:2] == ([], [])


def test_fok_that_cannot_fill_in_full_expires_without_executing(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.6000"))
    before = engine.balances("taker")

    order, execs = engine.place("taker", SYM, Side.BUY, LIMIT, D("15.00"), D("2.5500"), TimeInForce.FOK)

    assert (order.status, execs) == (OrderStatus.EXPIRED, [])
    assert engine.balances("taker") == before
    assert engine.depth(SYM)[1] == [(D("2.5000"), D("10.00")), (D("2.6000"), D("10.00"))]


def test_fok_that_can_fill_in_full_fills_across_levels(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.6000"))

    order, execs = engine.place("taker", SYM, Side.BUY, LIMIT, D("15.00"), D("2.6000"), TimeInForce.FOK)

    assert order.status is OrderStatus.FILLED
    assert sum(e.qty for e in execs) == D("15")


def test_limit_maker_that_would_cross_is_rejected_and_changes_nothing(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    with pytest.raises(OrderRejected) as err:
        engine.place("taker", SYM, Side.BUY, OrderType.LIMIT_MAKER, D("10.00"), D("2.5000"))

    assert err.value.reason is RejectReason.WOULD_TAKE
    assert bal(engine, "taker", "USDT") == Balance(D("100000"), D("0"))
    order, _ = engine.place("taker", SYM, Side.BUY, OrderType.LIMIT_MAKER, D("10.00"), D("2.4999"))
    assert order.status is OrderStatus.NEW


# ------------------------------------------------------------------ rejections


@pytest.mark.parametrize(
    ("qty", "price", "reason"),
    [
        (D("10.00"), D("2.50001"), RejectReason.PRICE_FILTER),
        (D("10.00"), D("0"), RejectReason.PRICE_FILTER),
        (D("10.001"), D("2.5"), RejectReason.LOT_SIZE),
        (D("0"), D("2.5"), RejectReason.LOT_SIZE),
        (D("1.00"), D("2.5"), RejectReason.MIN_NOTIONAL),
        (D("1000000"), D("2.5"), RejectReason.INSUFFICIENT_BALANCE),
    ],
)
def test_orders_breaking_a_filter_or_the_balance_are_rejected(
    engine: MatchingEngine, qty: Decimal, price: Decimal, reason: RejectReason
) -> None:
    with pytest.raises(OrderRejected) as err:
        engine.place("taker", SYM, Side.BUY, LIMIT, qty, price)

    assert err.value.reason is reason
    assert engine.open_orders("taker") == []
    assert bal(engine, "taker", "USDT") == Balance(D("100000"), D("0"))


def test_market_orders_check_quantity_filters_but_not_notional(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.5000"))
    with pytest.raises(OrderRejected) as err:
        engine.place("taker", SYM, Side.SELL, OrderType.MARKET, D("0.001"))
    assert err.value.reason is RejectReason.LOT_SIZE

    order, _ = engine.place("taker", SYM, Side.SELL, OrderType.MARKET, D("1.00"))  # 2.5 USDT < min notional
    assert order.status is OrderStatus.FILLED


def test_duplicate_client_order_id_among_open_orders_is_rejected(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.5000"), client_order_id="x-1")
    with pytest.raises(OrderRejected) as err:
        engine.place("maker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.4000"), client_order_id="x-1")
    assert err.value.reason is RejectReason.DUPLICATE_ORDER

    engine.cancel("maker", SYM, client_order_id="x-1")
    order, _ = engine.place("maker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.4000"), client_order_id="x-1")
    assert order.status is OrderStatus.NEW


def test_unknown_symbol_and_unknown_order_are_rejected(engine: MatchingEngine) -> None:
    with pytest.raises(OrderRejected) as err:
        engine.place("maker", "DOGE/USDT", Side.BUY, LIMIT, D("1"), D("1"))
    assert err.value.reason is RejectReason.UNKNOWN_SYMBOL

    order, _ = engine.place("maker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.5000"))
    for account, symbol in (("taker", SYM), ("maker", BTC.symbol)):  # someone else's, other symbol
        with pytest.raises(OrderRejected) as err:
            engine.cancel(account, symbol, order_id=order.order_id)
        assert err.value.reason is RejectReason.UNKNOWN_ORDER
    engine.cancel("maker", SYM, order_id=order.order_id)
    with pytest.raises(OrderRejected) as err:
        engine.cancel("maker", SYM, order_id=order.order_id)
    assert err.value.reason is RejectReason.UNKNOWN_ORDER


# ------------------------------------------------------------------ queries and history


def test_get_order_finds_finished_orders_by_id_and_client_id(engine: MatchingEngine) -> None:
    order, _ = engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"), client_order_id="a-1")
    engine.place("taker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.5000"))

    by_id = engine.get_order("maker", SYM, order_id=order.order_id)
    by_cid = engine.get_order("maker", SYM, client_order_id="a-1")
    assert by_id == by_cid
    assert by_id.status is OrderStatus.FILLED
    assert engine.open_orders("maker") == []


def test_returned_orders_are_snapshots_the_engine_does_not_mutate(engine: MatchingEngine) -> None:
    order, _ = engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    engine.place("taker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.5000"))

    assert order.status is OrderStatus.NEW
    assert order.filled == 0


def test_history_is_bounded_but_old_open_orders_stay_listed(clock: ManualClock) -> None:
    engine = MatchingEngine([BERA], clock, history_limit=5)
    engine.deposit("a", "USDT", D("100000"))
    engine.deposit("b", "BERA", D("100000"))
    old, _ = engine.place("a", SYM, Side.BUY, LIMIT, D("10.00"), D("1.0000"))
    for _ in range(20):
        engine.place("b", SYM, Side.SELL, LIMIT, D("10.00"), D("2.0000"))
        engine.place("a", SYM, Side.BUY, LIMIT, D("10.00"), D("2.0000"))

    orders = engine.all_orders("a", SYM)
    assert len(engine.my_trades("a", SYM)) == 5
    assert len(engine.recent_trades(SYM)) == 5
    assert orders[0].order_id == old.order_id  # still open, so still there
    assert len(orders) == 6
    assert [o.order_id for o in orders] == sorted(o.order_id for o in orders)
    with pytest.raises(OrderRejected):
        engine.get_order("a", SYM, order_id=old.order_id + 2)  # finished and evicted


def test_cancel_all_cancels_only_that_accounts_orders_on_that_symbol(engine: MatchingEngine) -> None:
    engine.place("maker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.5000"))
    engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.6000"))
    engine.place("maker", BTC.symbol, Side.BUY, LIMIT, D("0.001"), D("90000"))
    engine.place("taker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.4000"))

    canceled = engine.cancel_all("maker", SYM)

    assert {o.status for o in canceled} == {OrderStatus.CANCELED}
    assert len(canceled) == 2
    assert [o.symbol for o in engine.open_orders("maker")] == [BTC.symbol]
    assert engine.depth(SYM)[:2] == ([(D("2.4000"), D("10.00"))], [])
    assert bal(engine, "maker", "BERA").locked == 0


# ------------------------------------------------------------------ listener events


def test_a_match_reports_the_trade_both_orders_and_the_touched_balances(engine: MatchingEngine) -> None:
    rec = Recorder()
    engine.listeners.append(rec)
    maker, _ = engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.5000"))
    taker, _ = engine.place("taker", SYM, Side.BUY, LIMIT, D("4.00"), D("2.5000"))

    assert [(o.order_id, o.status, e is not None) for o, e in rec.orders] == [
        (maker.order_id, OrderStatus.NEW, False),
        (taker.order_id, OrderStatus.NEW, False),
        (maker.order_id, OrderStatus.PARTIALLY_FILLED, True),
        (taker.order_id, OrderStatus.FILLED, True),
    ]
    (trade,) = rec.trades
    assert (trade.price, trade.qty, trade.taker_side) == (D("2.5000"), D("4.00"), Side.BUY)
    assert trade.maker_order.filled == D("4")
    last_two = dict(rec.balances[-2:])
    assert set(last_two["maker"]) == {"BERA", "USDT"}
    assert last_two["maker"]["BERA"] == Balance(D("99990"), D("6"))
    assert last_two["taker"]["USDT"] == Balance(D("99990"), D("0"))
    assert [c.update_id for c in rec.changes] == [1, 2]
    assert rec.changes[-1] == BookChange(SYM, Side.SELL, D("2.5000"), D("6.00"), 2)


def test_book_changes_applied_to_an_early_snapshot_reproduce_the_later_depth(
    engine: MatchingEngine,
) -> None:
    rng = random.Random(11)
    for i in range(20):  # something on the book before the snapshot
        engine.place("maker", SYM, Side.BUY, LIMIT, D("10.00"), D("2.4000") - D("0.0010") * i)
        engine.place("maker", SYM, Side.SELL, LIMIT, D("10.00"), D("2.6000") + D("0.0010") * i)
    bids, asks, last_id = engine.depth(SYM, limit=1000)
    book = {Side.BUY: dict(bids), Side.SELL: dict(asks)}
    rec = Recorder()
    engine.listeners.append(rec)

    for _ in range(600):
        account = rng.choice(["maker", "taker"])
        side = rng.choice(list(Side))
        roll = rng.random()
        if roll < 0.5:
            price = D("2.5000") + D("0.0001") * rng.randint(-1200, 1200)
            engine.place(account, SYM, side, LIMIT, D("0.01") * rng.randint(300, 3000), price)
        elif roll < 0.85 and (open_ := engine.open_orders(account, SYM)):
            engine.cancel(account, SYM, order_id=rng.choice(open_).order_id)
        elif roll >= 0.85:
            engine.place(account, SYM, side, OrderType.MARKET, D("0.01") * rng.randint(100, 6000))

    ids = [c.update_id for c in rec.changes]
    assert ids == list(range(last_id + 1, last_id + 1 + len(ids)))  # +1 per change, no gaps
    for change in rec.changes:
        if change.update_id <= last_id:
            continue
        if change.qty == 0:
            del book[change.side][change.price]
        else:
            book[change.side][change.price] = change.qty
    bids, asks, final_id = engine.depth(SYM, limit=1000)
    assert final_id == ids[-1]
    assert sorted(book[Side.BUY].items(), reverse=True) == bids
    assert sorted(book[Side.SELL].items()) == asks
    assert len(rec.trades) > 50


def test_fast_event_builders_equal_the_dataclass_constructors() -> None:
    from connectors.paper import engine as eng

    side, one = Side.BUY, Decimal(1)
    assert eng._book_change("S", side, one, one, 1) == eng.BookChange("S", side, one, one, 1)
    order = eng.Order(
        1, "c", "a", "S", side, eng.OrderType.LIMIT, eng.TimeInForce.GTC, one, one, one, one,
        eng.OrderStatus.NEW, 0.0, 0.0,
    )  # fmt: skip
    args = (1, "S", one, one, side, order, order, one, "A", one, "B", 0.0)
    assert eng._execution(*args) == eng.Execution(*args)
    assert eng._balance(one, one) == eng.Balance(one, one)
