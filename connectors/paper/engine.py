"""Price-time priority matching engine of the paper venue: one engine per venue, all its symbols.

Exact decimals at the boundary (``Decimal`` in, ``Decimal`` out); inside, prices are integer
ticks and quantities integer steps, which is exact because every accepted price is on the tick
and every accepted quantity on the step. Each side of a book is a ``dict`` of price levels
(FIFO queues) plus a sorted list of level keys kept with ``bisect``; the best level is always
the last key, so taking it and removing it is O(1). A cancel is O(1) too: it marks the order
and matching skips it (see :class:`_Level`).

Balances lock on entry (a buy locks ``price * qty`` of the quote asset, a sell ``qty`` of the
base), settle exactly on every fill, and a cancel or expiry unlocks what is left. Fees are
charged on the asset received (Binance's default) at the maker or taker rate, per fill, rounded
half up to 8 decimals (the precision Binance reports ``commission`` in): what an execution
reports is exactly what the account was charged, so an account's balance change equals its
reported fills and fees to the last unit. They are kept in :attr:`MatchingEngine.fees`, so for
every asset the sum over accounts of free + locked plus fees collected only changes by deposits.

The engine is pure: no I/O, no asyncio, time from an injected :class:`~strategies.clock.Clock`.
Listeners (the venue server) are called synchronously after each state change, with
snapshots, never the engine's own mutable objects.

``place`` and ``cancel`` are the hot path (``bench/matching_engine.py``): one mutable record
per order (:class:`_OrderState`, of which callers and listeners get :class:`Order` snapshots),
enum members and attributes bound to locals, event objects built only while someone listens
and without the class call (see ``_book_change``), and the exact decimal context entered with
``setcontext`` rather than ``localcontext``, which copies the context on every call.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Context, Decimal, getcontext, localcontext, setcontext
from enum import StrEnum
from typing import Protocol

from strategies.clock import Clock
from strategies.types import Side

# Engine arithmetic runs in this context: 60 significant digits keep every product and sum of
# realistic balances, prices, sizes and fee rates exact, whatever the caller's context says.
_EXACT = Context(prec=60)
_ZERO = Decimal(0)
# Fees are charged as reported: per fill, to Binance's 8 decimals of ``commission``.
_FEE_QUANTUM = Decimal("0.00000001")
DEFAULT_HISTORY_LIMIT = 1000


class OrderType(StrEnum):
    """Order types the venue accepts (Binance's names)."""

    LIMIT = "LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    MARKET = "MARKET"


class TimeInForce(StrEnum):
    """How long a limit order lives (Binance's names)."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    """Order status, with Binance's names and values."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_open(self) -> bool:
        return self is OrderStatus.NEW or self is OrderStatus.PARTIALLY_FILLED


class RejectReason(StrEnum):
    """Why the engine refused a request; the server maps each to a Binance error code."""

    PRICE_FILTER = "PRICE_FILTER"
    LOT_SIZE = "LOT_SIZE"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    WOULD_TAKE = "WOULD_TAKE"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"


class OrderRejected(Exception):
    """A request the engine refused; nothing changed and no listener was called."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One market of the venue and its filters."""

    symbol: str  # ccxt unified, "BERA/USDT"
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)

    @property
    def wire(self) -> str:
        """Binance's form of the symbol, "BERAUSDT"."""
        return f"{self.base}{self.quote}"


@dataclass(slots=True)
class Order:
    """An order as the venue reports it. ``price`` is None for market orders."""

    order_id: int
    client_order_id: str
    account: str
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    price: Decimal | None
    qty: Decimal
    filled: Decimal
    cum_quote: Decimal
    status: OrderStatus
    created_ts: float
    updated_ts: float

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    def copy(self) -> Order:
        """A detached snapshot (the engine keeps mutating its own instance)."""
        return Order(
            self.order_id, self.client_order_id, self.account, self.symbol, self.side, self.type,
            self.tif, self.price, self.qty, self.filled, self.cum_quote, self.status,
            self.created_ts, self.updated_ts,
        )  # fmt: skip


@dataclass(slots=True)
class Execution:
    """One match between a resting maker order and an incoming taker order (read-only by convention)."""

    trade_id: int  # per symbol, increasing
    symbol: str
    price: Decimal  # always the maker's price
    qty: Decimal
    taker_side: Side
    maker_order: Order  # snapshot after this fill
    taker_order: Order  # snapshot after this fill
    maker_fee: Decimal
    maker_fee_asset: str
    taker_fee: Decimal
    taker_fee_asset: str
    ts: float

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass(slots=True)
class BookChange:
    """The new total quantity at one price level; ``qty == 0`` means the level is gone.

    ``update_id`` is per symbol, +1 for every change, never reused: a client holding a
    :meth:`MatchingEngine.depth` snapshot with last id ``n`` reproduces the book by applying
    every change with ``update_id > n`` in order.
    """

    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    update_id: int


@dataclass(slots=True)
class Balance:
    """One asset of one account."""

    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


# Enum members bound once: an attribute lookup on an enum class costs as much as a dict insert.
_BUY, _SELL = Side.BUY, Side.SELL
_LIMIT_MAKER, _MARKET = OrderType.LIMIT_MAKER, OrderType.MARKET
_GTC, _IOC, _FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
_NEW, _PARTIALLY_FILLED, _FILLED = OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED
_CANCELED, _EXPIRED = OrderStatus.CANCELED, OrderStatus.EXPIRED

# Building event objects is most of what a listener costs the engine, so the hot path fills
# them without the class call (which packs arguments and runs __init__ in a frame of its own):
# allocate with object.__new__ and store each slot. Events are therefore not frozen; listeners
# must treat them as read-only.
_new = object.__new__


def _book_change(symbol: str, side: Side, price: Decimal, qty: Decimal, update_id: int) -> BookChange:
    """``BookChange(symbol, side, price, qty, update_id)``, built faster."""
    change: BookChange = _new(BookChange)
    change.symbol = symbol
    change.side = side
    change.price = price
    change.qty = qty
    change.update_id = update_id
    return change


def _execution(
    trade_id: int, symbol: str, price: Decimal, qty: Decimal, taker_side: Side, maker_order: Order,
    taker_order: Order, maker_fee: Decimal, maker_fee_asset: str, taker_fee: Decimal,
    taker_fee_asset: str, ts: float,
) -> Execution:  # fmt: skip
    """``Execution(...)`` with the same arguments, built faster."""
    ex: Execution = _new(Execution)
    ex.trade_id = trade_id
    ex.symbol = symbol
    ex.price = price
    ex.qty = qty
    ex.taker_side = taker_side
    ex.maker_order = maker_order
    ex.taker_order = taker_order
    ex.maker_fee = maker_fee
    ex.maker_fee_asset = maker_fee_asset
    ex.taker_fee = taker_fee
    ex.taker_fee_asset = taker_fee_asset
    ex.ts = ts
    return ex


def _balance(free: Decimal, locked: Decimal) -> Balance:
    """``Balance(free, locked)``, built faster."""
    bal = _new(Balance)
    bal.free = free
    bal.locked = locked
    return bal


class EngineListener(Protocol):
    """What the venue server implements to turn engine changes into REST/WS output.

    Called synchronously, in the order things happen, while an operation runs: a listener may
    read the engine (``depth``) but must not call back into ``place``/``cancel`` and must not
    raise, since an exception would leave that operation half applied. Listeners run in the
    engine's exact decimal context and must not change it.
    """

    def on_book_change(self, change: BookChange) -> None: ...

    def on_trade(self, execution: Execution) -> None: ...

    def on_order_update(self, order: Order, execution: Execution | None) -> None:
        """Every status change and every fill, for both sides of a match."""
        ...

    def on_balance_update(self, account: str, assets: dict[str, Balance]) -> None:
        """After each operation, the assets of ``account`` it touched."""
        ...


class _OrderState:
    """The engine's own, mutable record of one order: the fields of :class:`Order` plus the
    integer state of the hot path. Callers and listeners only ever see :meth:`snapshot`.

    No ``__eq__`` or ``__hash__``: identity is what the book and the accounts need.
    """

    __slots__ = (
        "account", "acct", "client_order_id", "created_ts", "cum_quote", "filled", "lock_left", "order_id",
        "price", "qty", "remaining", "side", "status", "symbol", "ticks", "tif", "type", "updated_ts",
    )  # fmt: skip
    order_id: int
    client_order_id: str
    account: str
    acct: _Account
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    price: Decimal | None
    qty: Decimal
    filled: Decimal
    cum_quote: Decimal
    status: OrderStatus
    created_ts: float
    updated_ts: float
    ticks: int  # these three only mean something while the order rests
    remaining: int  # steps
    lock_left: Decimal  # what it still holds locked: quote for buys, base for sells

    def snapshot(self) -> Order:
        """The public, detached view of this order now (``Order(...)``, built faster)."""
        order = _new(Order)
        order.order_id = self.order_id
        order.client_order_id = self.client_order_id
        order.account = self.account
        order.symbol = self.symbol
        order.side = self.side
        order.type = self.type
        order.tif = self.tif
        order.price = self.price
        order.qty = self.qty
        order.filled = self.filled
        order.cum_quote = self.cum_quote
        order.status = self.status
        order.created_ts = self.created_ts
        order.updated_ts = self.updated_ts
        return order


def _order_state(
    order_id: int, client_order_id: str, account: str, acct: _Account, symbol: str, side: Side,
    type: OrderType, tif: TimeInForce, price: Decimal | None, qty: Decimal, now: float,
) -> _OrderState:  # fmt: skip
    """A new order's record, status NEW and nothing filled (built as the event objects are)."""
    state = _new(_OrderState)
    state.order_id = order_id
    state.client_order_id = client_order_id
    state.account = account
    state.acct = acct
    state.symbol = symbol
    state.side = side
    state.type = type
    state.tif = tif
    state.price = price
    state.qty = qty
    state.filled = _ZERO
    state.cum_quote = _ZERO
    state.status = _NEW
    state.created_ts = now
    state.updated_ts = now
    state.ticks = 0
    state.remaining = 0
    state.lock_left = _ZERO
    return state


class _Level:
    """One price level: its orders in time priority and their total in steps.

    A cancel does not search the queue: it leaves the order in place, marked CANCELED, and
    matching drops such orders when they reach the front. ``dead`` counts them so the queue is
    compacted once they are the majority; a level with no live order (``total == 0``, every
    live order having at least one step left) leaves the book at once.
    """

    __slots__ = ("dead", "orders", "total")

    def __init__(self, first: _OrderState) -> None:
        self.orders: deque[_OrderState] = deque((first,))
        self.total = first.remaining  # steps
        self.dead = 0


class _Book:
    """One symbol: both sides, its update id, trade ids and public trade history."""

    __slots__ = (
        "_prices", "ask_keys", "asks", "base", "bid_keys", "bids", "min_notional_units", "min_steps",
        "next_trade_id", "quote", "spec", "step", "steps_of", "symbol", "tick", "tick_step", "ticks_of",
        "trades", "update_id",
    )  # fmt: skip

    def __init__(self, spec: SymbolSpec, history_limit: int) -> None:
        self.spec = spec
        self.symbol = spec.symbol
        self.base = spec.base
        self.quote = spec.quote
        self.tick = spec.tick
        self.step = spec.step
        with localcontext(_EXACT):
            self.tick_step = spec.tick * spec.step  # the value of one ticks*steps unit
        self.bids: dict[int, _Level] = {}
        self.asks: dict[int, _Level] = {}
        # Sorted level keys with the best level last: bids by +ticks, asks by -ticks.
        self.bid_keys: list[int] = []
        self.ask_keys: list[int] = []
        self.update_id = 0
        self.next_trade_id = 1
        self.trades: deque[Execution] = deque(maxlen=history_limit)
        self._prices: dict[int, Decimal] = {}
        self.ticks_of: dict[Decimal, int] = {}
        self.steps_of: dict[Decimal, int] = {}
        # Filters in grid units: min qty in steps, min notional in ticks*steps (rounded up).
        self.min_steps = max(1, int((spec.min_qty / spec.step).to_integral_value(ROUND_CEILING)))
        self.min_notional_units = int(
            (spec.min_notional / (spec.tick * spec.step)).to_integral_value(ROUND_CEILING)
        )

    @staticmethod
    def remember(cache: dict[Decimal, int], value: Decimal, units: int) -> None:
        if len(cache) > 100_000:  # bounded whatever the order flow
            cache.clear()
        cache[value] = units

    def price(self, ticks: int) -> Decimal:
        """The price of ``ticks`` with the tick's exponent, cached: levels are revisited constantly."""
        price = self._prices.get(ticks)
        if price is None:
            if len(self._prices) > 100_000:  # a long random walk visits many; stay bounded
                self._prices.clear()
            price = self._prices[ticks] = self.tick * ticks
        return price


class _Account:
    __slots__ = ("balances", "history", "open", "open_by_cid", "trades")

    def __init__(self) -> None:
        self.balances: dict[str, Balance] = {}
        self.open: dict[int, _OrderState] = {}
        self.open_by_cid: dict[str, _OrderState] = {}
        self.history: dict[str, deque[_OrderState]] = {}  # per symbol, every order, oldest first
        self.trades: dict[str, deque[Execution]] = {}  # per symbol

    def balance(self, asset: str) -> Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = Balance(_ZERO, _ZERO)
        return bal


def _on_grid(value: Decimal, grid: Decimal) -> int | None:
    """``value`` in grid units, or None if it is not a whole number of them."""
    if not value.is_finite():
        return None
    units = value / grid
    whole = units.to_integral_value()
    return int(whole) if units == whole else None


class MatchingEngine:
    """All symbols, accounts and fees of one paper venue.

    Not thread-safe and not async: the venue server calls it from one event loop.
    """

    def __init__(
        self,
        symbols: list[SymbolSpec],
        clock: Clock,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        history_limit: int = DEFAULT_HISTORY_LIMIT,
    ) -> None:
        self.symbols: dict[str, SymbolSpec] = {s.symbol: s for s in symbols}
        self.by_wire: dict[str, SymbolSpec] = {s.wire: s for s in symbols}
        self.clock = clock
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.listeners: list[EngineListener] = []
        self.fees: dict[str, Decimal] = {}  # fees collected per asset
        self._history_limit = history_limit
        self._books = {s.symbol: _Book(s, history_limit) for s in symbols}
        self._accounts: dict[str, _Account] = {}
        self._next_order_id = 1
        # Per operation: which assets of which accounts changed, for on_balance_update. Used by
        # matches and multi-order operations; a lone add or cancel reports its one asset directly.
        self._touched: set[tuple[str, str]] = set()  # filled only while someone listens

    # ----------------------------------------------------------------- accounts

    def spec(self, symbol: str) -> SymbolSpec:
        return self._book(symbol).spec

    def deposit(self, account: str, asset: str, amount: Decimal) -> None:
        """Credit ``amount`` of ``asset`` to the free balance of ``account``."""
        if amount <= 0:
            raise ValueError(f"deposit must be positive, got {amount}")
        with localcontext(_EXACT):
            bal = self._account(account).balance(asset)
            bal.free += amount
        self._touch(account, asset)
        self._emit_balances()

    def balances(self, account: str) -> dict[str, Balance]:
        acct = self._accounts.get(account)
        if acct is None:
            return {}
        return {a: _balance(b.free, b.locked) for a, b in acct.balances.items()}

    # ------------------------------------------------------------------- orders

    def place(
        self,
        account: str,
        symbol: str,
        side: Side,
        type: OrderType,
        qty: Decimal,
        price: Decimal | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        client_order_id: str | None = None,
    ) -> tuple[Order, list[Execution]]:
        """Validate, lock, match and (for a GTC limit remainder) rest an order.

        Returns a snapshot of the order after matching and its executions. Raises
        :class:`OrderRejected` (nothing changed) when a filter, the balance, a duplicate open
        client order id or a would-take LIMIT_MAKER refuses it. A FOK that cannot fill in full
        comes back EXPIRED with no execution; an IOC or MARKET remainder expires.
        """
        book = self._books.get(symbol)
        if book is None:
            raise OrderRejected(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {symbol}")
        caller = getcontext()
        setcontext(_EXACT)
        try:
            return self._place(book, account, side, type, qty, price, tif, client_order_id)
        finally:
            setcontext(caller)

    def cancel(
        self, account: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        """Cancel one open order; UNKNOWN_ORDER if it is not open (or not on ``symbol``)."""
        book = self._books.get(symbol)
        if book is None:
            raise OrderRejected(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {symbol}")
        acct = self._accounts.get(account)
        if acct is not None and order_id is not None and client_order_id is None:
            state = acct.open.get(order_id)  # the common case, without _find_open's branches
            if state is not None and state.symbol != symbol:
                state = None
        else:
            state = self._find_open(acct, symbol, order_id, client_order_id)
        if acct is None or state is None:
            raise OrderRejected(RejectReason.UNKNOWN_ORDER, "order does not exist or is not open")
        caller = getcontext()
        setcontext(_EXACT)
        try:
            bal = self._cancel(book, acct, state)
        finally:
            setcontext(caller)
        listeners = self.listeners
        if listeners:
            one = {book.quote if state.side is _BUY else book.base: _balance(bal.free, bal.locked)}
            for listener in listeners:
                listener.on_balance_update(state.account, one)
        return state.snapshot()

    def cancel_all(self, account: str, symbol: str) -> list[Order]:
        """Cancel every open order of ``account`` on ``symbol`` (oldest first)."""
        book = self._book(symbol)
        acct = self._accounts.get(account)
        if acct is None:
            return []
        mine = [s for s in acct.open.values() if s.symbol == symbol]
        with localcontext(_EXACT):
            for state in mine:
                self._cancel(book, acct, state)
                if self.listeners:
                    self._touch(state.account, book.quote if state.side is _BUY else book.base)
        self._emit_balances()
        return [s.snapshot() for s in mine]

    def is_open(self, account: str, order_id: int) -> bool:
        """Cheap check for participants tracking their own ladders."""
        acct = self._accounts.get(account)
        return acct is not None and order_id in acct.open

    def get_order(
        self, account: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> Order:
        """An open order or one from the bounded history; UNKNOWN_ORDER otherwise."""
        self._book(symbol)
        acct = self._accounts.get(account)
        state = self._find_open(acct, symbol, order_id, client_order_id)
        if state is not None:
            return state.snapshot()
        if acct is not None and (order_id is not None or client_order_id is not None):
            for old in reversed(acct.history.get(symbol, ())):
                if (order_id is None or old.order_id == order_id) and (
                    client_order_id is None or old.client_order_id == client_order_id
                ):
                    return old.snapshot()
        raise OrderRejected(RejectReason.UNKNOWN_ORDER, "order does not exist")

    def open_orders(self, account: str, symbol: str | None = None) -> list[Order]:
        acct = self._accounts.get(account)
        if acct is None:
            return []
        return [s.snapshot() for s in acct.open.values() if symbol is None or s.symbol == symbol]

    def all_orders(self, account: str, symbol: str, limit: int = 500) -> list[Order]:
        """Open and finished orders on ``symbol``, oldest first, at most the last ``limit``."""
        self._book(symbol)
        acct = self._accounts.get(account)
        if acct is None:
            return []
        by_id = {s.order_id: s for s in acct.history.get(symbol, ())}
        # An old open order may have left the bounded history; it is still an order.
        for s in acct.open.values():
            if s.symbol == symbol:
                by_id[s.order_id] = s
        return [by_id[i].snapshot() for i in sorted(by_id)[-limit:]] if limit > 0 else []

    def my_trades(self, account: str, symbol: str, limit: int = 500) -> list[Execution]:
        self._book(symbol)
        acct = self._accounts.get(account)
        if acct is None or limit <= 0:
            return []
        return list(acct.trades.get(symbol, ()))[-limit:]

    # ----------------------------------------------------------------- market data

    def depth(
        self, symbol: str, limit: int = 100
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]], int]:
        """(bids best first, asks best first, last update id) for the top ``limit`` levels."""
        book = self._book(symbol)
        tick, step = book.tick, book.step
        with localcontext(_EXACT):
            bids = [(tick * k, step * book.bids[k].total) for k in reversed(book.bid_keys[-limit:])]
            asks = [(tick * -k, step * book.asks[-k].total) for k in reversed(book.ask_keys[-limit:])]
        return bids, asks, book.update_id

    def best_bid_ask(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        book = self._book(symbol)
        bid = book.tick * book.bid_keys[-1] if book.bid_keys else None
        ask = book.tick * -book.ask_keys[-1] if book.ask_keys else None
        return bid, ask

    def recent_trades(self, symbol: str, limit: int = 500) -> list[Execution]:
        """Public trades on ``symbol``, oldest first, at most the last ``limit``."""
        if limit <= 0:
            return []
        return list(self._book(symbol).trades)[-limit:]

    # ------------------------------------------------------------------ internals

    def _book(self, symbol: str) -> _Book:
        book = self._books.get(symbol)
        if book is None:
            raise OrderRejected(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {symbol}")
        return book

    def _account(self, account: str) -> _Account:
        acct = self._accounts.get(account)
        if acct is None:
            acct = self._accounts[account] = _Account()
        return acct

    @staticmethod
    def _find_open(
        acct: _Account | None, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> _OrderState | None:
        if acct is None:
            return None
        if order_id is not None:
            state = acct.open.get(order_id)
            if state is not None and client_order_id is not None and state.client_order_id != client_order_id:
                return None
        elif client_order_id is not None:
            state = acct.open_by_cid.get(client_order_id)
        else:
            return None
        if state is None or state.symbol != symbol:
            return None
        return state

    @staticmethod
    def _validate(
        book: _Book, type: OrderType, qty: Decimal, price: Decimal | None
    ) -> tuple[int, int | None]:
        """(qty in steps, price in ticks or None for MARKET), or OrderRejected.

        Filters are checked in integers: every order's price and size land on a bounded set of
        values, so the Decimal-to-grid conversions are cached per book.
        """
        spec = book.spec
        steps = book.steps_of.get(qty)
        if steps is None:
            steps = _on_grid(qty, spec.step)
            if steps is None or steps <= 0:
                raise OrderRejected(
                    RejectReason.LOT_SIZE, f"quantity {qty} not a positive multiple of {spec.step}"
                )
            book.remember(book.steps_of, qty, steps)
        if steps < book.min_steps:
            raise OrderRejected(RejectReason.LOT_SIZE, f"quantity {qty} below minimum {spec.min_qty}")
        if type is OrderType.MARKET:
            return steps, None
        if price is None:
            raise OrderRejected(RejectReason.PRICE_FILTER, f"{type.value} order needs a price")
        ticks = book.ticks_of.get(price)
        if ticks is None:
            ticks = _on_grid(price, spec.tick)
            if ticks is None or ticks <= 0:
                raise OrderRejected(
                    RejectReason.PRICE_FILTER, f"price {price} not a positive multiple of {spec.tick}"
                )
            book.remember(book.ticks_of, price, ticks)
        if ticks * steps < book.min_notional_units:
            raise OrderRejected(
                RejectReason.MIN_NOTIONAL, f"notional {price * qty} below minimum {spec.min_notional}"
            )
        return steps, ticks

    def _place(
        self,
        book: _Book,
        account: str,
        side: Side,
        type: OrderType,
        qty: Decimal,
        price: Decimal | None,
        tif: TimeInForce,
        client_order_id: str | None,
    ) -> tuple[Order, list[Execution]]:
        # Grid and filters: the cached conversions decide in integers when both values were
        # seen before and pass; anything else goes the long way, which also words the rejection.
        steps: int | None = book.steps_of.get(qty)
        ticks: int | None
        if type is _MARKET:
            ticks = None
            if steps is None or steps < book.min_steps:
                steps, ticks = self._validate(book, type, qty, price)
        else:
            ticks = book.ticks_of.get(price) if price is not None else None
            if (
                steps is None
                or ticks is None
                or steps < book.min_steps
                or ticks * steps < book.min_notional_units
            ):
                steps, ticks = self._validate(book, type, qty, price)
        acct = self._accounts.get(account)
        if acct is None:
            acct = self._account(account)
        if client_order_id is not None and client_order_id in acct.open_by_cid:
            raise OrderRejected(RejectReason.DUPLICATE_ORDER, f"client order id {client_order_id} is open")
        is_buy = side is _BUY
        if type is _MARKET:
            tif = _IOC  # a market order never rests
        elif type is _LIMIT_MAKER:
            tif = _GTC
            if self._crossable(book, is_buy, ticks, 1):
                raise OrderRejected(RejectReason.WOULD_TAKE, "order would immediately match and take")

        # What the order locks: a limit buy its full notional, a market buy exactly the cost of
        # the liquidity it will take (known up front, the engine being the only writer).
        if is_buy:
            lock_asset = book.quote
            if ticks is None:
                lock = book.tick_step * self._market_cost(book, steps)
                fok_short = False
            else:
                assert price is not None  # a limit price is on the grid here
                lock = price * qty
                fok_short = tif is _FOK and not self._crossable(book, True, ticks, steps)
        else:
            lock_asset = book.base
            lock = qty
            fok_short = tif is _FOK and not self._crossable(book, False, ticks, steps)
        bal = acct.balances.get(lock_asset)
        if bal is None:
            bal = acct.balance(lock_asset)
        if bal.free < lock:
            raise OrderRejected(
                RejectReason.INSUFFICIENT_BALANCE, f"{lock} {lock_asset} needed, {bal.free} free"
            )

        now = self.clock.time()
        order_id = self._next_order_id
        self._next_order_id = order_id + 1
        symbol = book.symbol
        order = _order_state(
            order_id, client_order_id or f"paper-{order_id}", account, acct, symbol, side, type, tif,
            price if ticks is not None else None, qty, now,
        )  # fmt: skip
        history = acct.history.get(symbol)
        if history is None:
            history = acct.history[symbol] = deque(maxlen=self._history_limit)
        history.append(order)
        listeners = self.listeners
        if listeners:
            snap = order.snapshot()
            for listener in listeners:
                listener.on_order_update(snap, None)

        executions: list[Execution] = []
        if fok_short:
            order.status = _EXPIRED
            self._emit_order(order)
            return order.snapshot(), executions

        bal.free -= lock
        bal.locked += lock
        # Only walk the other side when the order reaches it (most adds do not).
        if is_buy:
            keys = book.ask_keys
            crosses = bool(keys) and (ticks is None or -keys[-1] <= ticks)
        else:
            keys = book.bid_keys
            crosses = bool(keys) and (ticks is None or keys[-1] >= ticks)
        if crosses:
            if listeners:
                self._touched.add((account, lock_asset))
            remaining, lock_left = self._match(book, order, acct, is_buy, steps, ticks, lock, now, executions)
        else:
            remaining, lock_left = steps, lock

        if remaining and tif is _GTC:
            assert ticks is not None  # GTC implies a limit price
            if remaining == steps:
                keep = lock
            elif is_buy:
                keep = book.tick * ticks * book.step * remaining
            else:
                keep = book.step * remaining
            if lock_left != keep:  # a buy that took at better prices frees the improvement now
                bal.free += lock_left - keep
                bal.locked -= lock_left - keep
            order.ticks = ticks
            order.remaining = remaining
            order.lock_left = keep
            acct.open[order_id] = order
            acct.open_by_cid[order.client_order_id] = order
            if is_buy:
                levels, keys, key = book.bids, book.bid_keys, ticks
            else:
                levels, keys, key = book.asks, book.ask_keys, -ticks
            level = levels.get(ticks)
            if level is None:
                levels[ticks] = level = _Level(order)
                bisect.insort(keys, key)
            else:
                level.orders.append(order)
                level.total += remaining
            update_id = book.update_id = book.update_id + 1
            if listeners:
                change = _book_change(symbol, side, book.price(ticks), book.step * level.total, update_id)
                for listener in listeners:
                    listener.on_book_change(change)
        else:
            if remaining:
                order.status = _EXPIRED
                order.updated_ts = now
                self._emit_order(order)
            if lock_left:
                bal.free += lock_left
                bal.locked -= lock_left
        if crosses:
            if self._touched:
                self._emit_balances()
        elif listeners:  # no match: the lock is the only balance that moved
            one = {lock_asset: _balance(bal.free, bal.locked)}
            for listener in listeners:
                listener.on_balance_update(account, one)
        return order.snapshot(), executions

    def _crossable(self, book: _Book, is_buy: bool, ticks: int | None, steps: int) -> bool:
        """Whether at least ``steps`` of opposite liquidity sit at prices the order accepts."""
        if is_buy:
            keys, levels, sign = book.ask_keys, book.asks, -1
        else:
            keys, levels, sign = book.bid_keys, book.bids, 1
        need = steps
        for i in range(len(keys) - 1, -1, -1):
            p = keys[i] * sign
            if ticks is not None and (p > ticks if is_buy else p < ticks):
                return False
            need -= levels[p].total
            if need <= 0:
                return True
        return False

    def _market_cost(self, book: _Book, steps: int) -> int:
        """What a market buy of ``steps`` would pay, in ticks*steps (less if the book is thin)."""
        cost = 0
        need = steps
        keys, levels = book.ask_keys, book.asks
        for i in range(len(keys) - 1, -1, -1):
            p = -keys[i]
            q = min(need, levels[p].total)
            cost += p * q
            need -= q
            if not need:
                break
        return cost

    def _match(
        self,
        book: _Book,
        taker: _OrderState,
        taker_acct: _Account,
        is_buy: bool,
        steps: int,
        limit: int | None,
        lock_left: Decimal,
        now: float,
        executions: list[Execution],
    ) -> tuple[int, Decimal]:
        """Take liquidity; returns (taker steps left, what the taker still holds locked)."""
        if is_buy:
            keys, levels, sign = book.ask_keys, book.asks, -1
        else:
            keys, levels, sign = book.bid_keys, book.bids, 1
        step = book.step
        symbol = book.symbol
        base, quote = book.base, book.quote
        maker_rate, taker_rate = self.maker_fee, self.taker_fee
        maker_side = _SELL if is_buy else _BUY
        taker_side = taker.side
        # Makers deliver what they locked and receive the other asset, less the maker fee.
        maker_gives, maker_gets = (base, quote) if is_buy else (quote, base)
        listeners = self.listeners
        touched = self._touched
        history_limit = self._history_limit
        public_trades = book.trades
        taker_trades = taker_acct.trades.get(symbol)
        if taker_trades is None:
            taker_trades = taker_acct.trades[symbol] = deque(maxlen=history_limit)
        maker_fees = _ZERO
        taker_fees = _ZERO
        remaining = steps
        while remaining and keys:
            p = keys[-1] * sign
            if limit is not None and (p > limit if is_buy else p < limit):
                break
            level = levels[p]
            orders = level.orders
            price = book.price(p)
            while remaining and level.total:
                maker = orders[0]
                if maker.status is _CANCELED:  # left behind by a cancel
                    orders.popleft()
                    level.dead -= 1
                    continue
                q = maker.remaining if maker.remaining < remaining else remaining
                qty = step * q
                quote_qty = price * qty
                remaining -= q
                maker.remaining -= q
                level.total -= q
                m_acct = maker.acct
                # The taker's side settles once after the loop with the sum of its per-fill
                # (rounded, reported) fees; each maker settles per fill.
                if is_buy:
                    gives, gets = qty, quote_qty
                    taker_fee = (qty * taker_rate).quantize(_FEE_QUANTUM, ROUND_HALF_UP)
                else:
                    gives, gets = quote_qty, qty
                    taker_fee = (quote_qty * taker_rate).quantize(_FEE_QUANTUM, ROUND_HALF_UP)
                taker_fees += taker_fee
                maker_fee = (gets * maker_rate).quantize(_FEE_QUANTUM, ROUND_HALF_UP)
                maker_fees += maker_fee
                maker.lock_left -= gives
                m_balances = m_acct.balances
                m_balances[maker_gives].locked -= gives
                m_bal = m_balances.get(maker_gets)
                if m_bal is None:
                    m_bal = m_acct.balance(maker_gets)
                m_bal.free += gets - maker_fee
                if listeners:
                    touched.add((maker.account, base))
                    touched.add((maker.account, quote))

                maker.filled += qty
                maker.cum_quote += quote_qty
                maker.updated_ts = now
                taker.filled += qty
                taker.cum_quote += quote_qty
                taker.updated_ts = now
                taker.status = _PARTIALLY_FILLED if remaining else _FILLED
                if maker.remaining:
                    maker.status = _PARTIALLY_FILLED
                else:
                    maker.status = _FILLED
                    orders.popleft()
                    del m_acct.open[maker.order_id]
                    m_acct.open_by_cid.pop(maker.client_order_id, None)
                    if maker.lock_left:  # cannot happen for exact locks; free it rather than leak
                        m_lock = m_balances[maker_gives]
                        m_lock.free += maker.lock_left
                        m_lock.locked -= maker.lock_left
                        maker.lock_left = _ZERO

                trade_id = book.next_trade_id
                book.next_trade_id = trade_id + 1
                ex = _execution(
                    trade_id, symbol, price, qty, taker_side, maker.snapshot(), taker.snapshot(),
                    maker_fee, maker_gets, taker_fee, maker_gives, now,
                )  # fmt: skip
                executions.append(ex)
                public_trades.append(ex)
                if m_acct is taker_acct:
                    taker_trades.append(ex)
                else:
                    maker_trades = m_acct.trades.get(symbol)
                    if maker_trades is None:
                        maker_trades = m_acct.trades[symbol] = deque(maxlen=history_limit)
                    maker_trades.append(ex)
                    taker_trades.append(ex)
                for listener in listeners:
                    listener.on_trade(ex)
                    listener.on_order_update(ex.maker_order, ex)
                    listener.on_order_update(ex.taker_order, ex)
            if not level.total:
                del levels[p]
                keys.pop()
            update_id = book.update_id = book.update_id + 1
            if listeners:
                change = _book_change(symbol, maker_side, price, step * level.total, update_id)
                for listener in listeners:
                    listener.on_book_change(change)

        filled = taker.filled
        if filled:
            cum_quote = taker.cum_quote
            # The taker gives from its lock what the makers got, and gets what they gave.
            gives, gets, taker_gets = (cum_quote, filled, base) if is_buy else (filled, cum_quote, quote)
            taker_gives = quote if is_buy else base
            taker_fee_total = taker_fees
            lock_left -= gives
            taker_acct.balances[taker_gives].locked -= gives
            taker_acct.balance(taker_gets).free += gets - taker_fee_total
            fees = self.fees
            fees[taker_gets] = fees.get(taker_gets, _ZERO) + taker_fee_total
            fees[maker_gets] = fees.get(maker_gets, _ZERO) + maker_fees
            if listeners:
                touched.add((taker.account, base))
                touched.add((taker.account, quote))
        return remaining, lock_left

    def _cancel(self, book: _Book, acct: _Account, state: _OrderState) -> Balance:
        """Take ``state`` off the book and unlock what it held; returns the unlocked balance."""
        is_buy = state.side is _BUY
        levels = book.bids if is_buy else book.asks
        p = state.ticks
        level = levels[p]
        total = level.total = level.total - state.remaining
        if not total:  # its last live order: the level goes, with whatever cancels it holds
            del levels[p]
            if is_buy:
                keys, key = book.bid_keys, p
            else:
                keys, key = book.ask_keys, -p
            del keys[bisect.bisect_left(keys, key)]
        else:
            dead = level.dead = level.dead + 1
            if dead > 16 and dead * 2 > len(level.orders):
                level.orders = deque(s for s in level.orders if s.status is not _CANCELED and s is not state)
                level.dead = 0
        del acct.open[state.order_id]
        acct.open_by_cid.pop(state.client_order_id, None)
        asset = book.quote if is_buy else book.base
        bal = acct.balances.get(asset)
        if bal is None:
            bal = acct.balance(asset)
        lock_left = state.lock_left
        bal.free += lock_left
        bal.locked -= lock_left
        state.lock_left = _ZERO
        state.status = _CANCELED
        state.updated_ts = self.clock.time()
        update_id = book.update_id = book.update_id + 1
        listeners = self.listeners
        if listeners:
            change = _book_change(book.symbol, state.side, book.price(p), book.step * total, update_id)
            for listener in listeners:
                listener.on_book_change(change)
            snap = state.snapshot()
            for listener in listeners:
                listener.on_order_update(snap, None)
        return bal

    def _touch(self, account: str, asset: str) -> None:
        self._touched.add((account, asset))

    def _emit_order(self, state: _OrderState) -> None:
        if self.listeners:
            snap = state.snapshot()
            for listener in self.listeners:
                listener.on_order_update(snap, None)

    def _emit_balances(self) -> None:
        if not self._touched:
            return
        touched, self._touched = self._touched, set()
        by_account: dict[str, dict[str, Balance]] = {}
        for name, asset in sorted(touched):
            bal = self._accounts[name].balances[asset]
            by_account.setdefault(name, {})[asset] = _balance(bal.free, bal.locked)
        for name, snap in by_account.items():
            for listener in self.listeners:
                listener.on_balance_update(name, snap)


