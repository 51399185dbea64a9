"""The local L2 order book of one symbol on one venue.

Hot path: the feed handler applies tens of thousands of depth updates per second, so a side
is a plain ``dict`` price -> qty plus one sorted ``list`` of keys kept with ``bisect``
(an insort only when a price level appears, a removal only when it goes). Prices and sizes
are floats; no object is created per level. Levels arrive as ``[price, qty]`` pairs exactly
as ``orjson`` parses a Binance frame (strings) or as floats; ``float()`` handles both, and a
price string always converts to the same float, so the dict key of a level is stable.

Each side's key list is ascending with the *best* price at the end (bid keys are prices,
ask keys are negated prices): changes cluster near the top of the book, and inserting or
deleting near the end of a Python list moves the fewest pointers.

The book does not judge sequence numbers or health: the feed handler owns Binance's
bridging rules and sets ``health``; the book stores both for its readers.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Sequence

from strategies.types import BookHealth, Side

Level = Sequence[str | float]
"""One wire level: ``[price, qty]`` (extra fields, e.g. an order count, are ignored)."""


class L2Book:
    """Aggregated price levels of one venue's book for one symbol.

    ``version`` grows by one on every applied snapshot or delta, so mirrors and strategies
    can tell cheaply whether anything changed since they last looked.
    """

    __slots__ = (
        "_ask_keys",
        "_asks",
        "_bid_keys",
        "_bids",
        "health",
        "max_depth",
        "seq",
        "symbol",
        "ts",
        "venue",
        "version",
    )

    def __init__(self, venue: str, symbol: str, max_depth: int | None = None) -> None:
        """``max_depth`` (levels per side) trims the far end after each change; None keeps all."""
        if max_depth is not None and max_depth < 1:
            raise ValueError("max_depth must be at least 1 level")
        self.venue = venue
        self.symbol = symbol
        self.max_depth = max_depth
        self.seq = 0
        self.version = 0
        self.ts = 0.0
        self.health = BookHealth()
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bid_keys: list[float] = []  # ascending prices: best bid last
        self._ask_keys: list[float] = []  # ascending negated prices: best ask last

    def __repr__(self) -> str:
        return (
            f"L2Book({self.venue!r}, {self.symbol!r}, bid={self.best_bid()}, ask={self.best_ask()}, "
            f"levels={len(self._bids)}/{len(self._asks)}, seq={self.seq})"
        )

    # ------------------------------------------------------------------ updates

    def apply_snapshot(self, bids: Iterable[Level], asks: Iterable[Level], seq: int, ts: float) -> None:
        """Replace the whole book with a snapshot; as in a delta, a later level wins and 0 removes."""
        bid_map = {float(lv[0]): float(lv[1]) for lv in bids}
        ask_map = {float(lv[0]): float(lv[1]) for lv in asks}
        self._bids = {p: q for p, q in bid_map.items() if q > 0.0}
        self._asks = {p: q for p, q in ask_map.items() if q > 0.0}
        self._bid_keys = sorted(self._bids)
        self._ask_keys = sorted(-p for p in self._asks)
        self._trim()
        self.seq = seq
        self.ts = ts
        self.version += 1

    def apply_delta(self, bids: Iterable[Level], asks: Iterable[Level], seq: int, ts: float) -> None:
        """Apply absolute level quantities; a quantity of 0 removes the level."""
        # Written out twice rather than through a helper: a call per level costs more than the update.
        book = self._bids
        keys = self._bid_keys
        for lv in bids:
            price = float(lv[0])
            qty = float(lv[1])
            if qty > 0.0:
                if price not in book:
                    insort(keys, price)
                book[price] = qty
            elif book.pop(price, None) is not None:
                del keys[bisect_left(keys, price)]
        book = self._asks
        keys = self._ask_keys
        for lv in asks:
            price = float(lv[0])
            qty = float(lv[1])
            if qty > 0.0:
                if price not in book:
                    insort(keys, -price)
                book[price] = qty
            elif book.pop(price, None) is not None:
                del keys[bisect_left(keys, -price)]
        if self.max_depth is not None:
            self._trim()
        self.seq = seq
        self.ts = ts
        self.version += 1

    def apply_delta_numeric(
        self, bids: Iterable[Sequence[float]], asks: Iterable[Sequence[float]], seq: int, ts: float
    ) -> None:
        """``apply_delta`` for ``[price, qty]`` pairs already parsed as numbers (the feed's hot path).

        It skips the two ``float()`` calls per level and unpacks each pair directly, so a level
        with extra fields raises ``ValueError`` (the book then stays at its old ``seq``, and the
        feed's next event reports a gap and resyncs). Numbers may be ints where the wire value
        is integral: ints hash and compare equal to the same floats, and a new level's price is
        still made a float, so every key and ``best_bid()`` stays a float. An update of an
        existing level is a single dict assignment (the dict keeps its original key); only a
        level's creation or removal touches the sorted keys.
        """
        # One hash per updated level: assign, and the dict's size tells whether the level is
        # new (len() is cheaper than a second lookup). A new level's key is made a float.
        book = self._bids
        keys = self._bid_keys
        size = len(book)
        for price, qty in bids:
            if qty > 0.0:
                book[price] = qty
                if len(book) != size:
                    size += 1
                    if type(price) is not float:
                        del book[price]
                        price = float(price)
                        book[price] = qty
                    insort(keys, price)
            elif book.pop(price, None) is not None:
                size -= 1
                del keys[bisect_left(keys, price)]
        book = self._asks
        keys = self._ask_keys
        size = len(book)
        for price, qty in asks:
            if qty > 0.0:
                book[price] = qty
                if len(book) != size:
                    size += 1
                    if type(price) is not float:
                        del book[price]
                        price = float(price)
                        book[price] = qty
                    insort(keys, -price)
            elif book.pop(price, None) is not None:
                size -= 1
                del keys[bisect_left(keys, -price)]
        if self.max_depth is not None:
            self._trim()
        self.seq = seq
        self.ts = ts
        self.version += 1

    def clear(self) -> None:
        """Drop every level (e.g. before a resync); seq returns to 0, version still grows."""
        self._bids = {}
        self._asks = {}
        self._bid_keys = []
        self._ask_keys = []
        self.seq = 0
        self.version += 1

    def _trim(self) -> None:
        limit = self.max_depth
        if limit is None:
            return
        excess = len(self._bid_keys) - limit
        if excess > 0:
            for price in self._bid_keys[:excess]:
                del self._bids[price]
            del self._bid_keys[:excess]
        excess = len(self._ask_keys) - limit
        if excess > 0:
            for key in self._ask_keys[:excess]:
                del self._asks[-key]
            del self._ask_keys[:excess]

    # ------------------------------------------------------------------ top of book

    def best_bid(self) -> float | None:
        return self._bid_keys[-1] if self._bid_keys else None

    def best_ask(self) -> float | None:
        return -self._ask_keys[-1] if self._ask_keys else None

    def best_bid_size(self) -> float:
        """Quantity at the best bid, 0.0 when the side is empty."""
        return self._bids[self._bid_keys[-1]] if self._bid_keys else 0.0

    def best_ask_size(self) -> float:
        """Quantity at the best ask, 0.0 when the side is empty."""
        return self._asks[-self._ask_keys[-1]] if self._ask_keys else 0.0

    def mid(self) -> float | None:
        """Midpoint of best bid and ask; None unless both sides have a level."""
        if not self._bid_keys or not self._ask_keys:
            return None
        return (self._bid_keys[-1] - self._ask_keys[-1]) * 0.5

    def spread_bps(self) -> float | None:
        """(ask - bid) / mid in basis points; negative when the book is crossed."""
        if not self._bid_keys or not self._ask_keys:
            return None
        bid = self._bid_keys[-1]
        ask = -self._ask_keys[-1]
        return (ask - bid) / ((ask + bid) * 0.5) * 1e4

    def is_crossed(self) -> bool:
        """True when best bid >= best ask: never in a healthy book, a sign of missed updates."""
        return bool(self._bid_keys and self._ask_keys and self._bid_keys[-1] >= -self._ask_keys[-1])

    def microprice(self) -> float | None:
        """Size-weighted mid (Stoikov): (bid * ask_size + ask * bid_size) / (bid_size + ask_size).

        It leans toward the side with less resting size, where the next trade more likely moves the price.
        """
        if not self._bid_keys or not self._ask_keys:
            return None
        bid = self._bid_keys[-1]
        ask = -self._ask_keys[-1]
        bid_size = self._bids[bid]
        ask_size = self._asks[ask]
        return (bid * ask_size + ask * bid_size) / (bid_size + ask_size)

    # ------------------------------------------------------------------ depth

    def bid_levels(self) -> Iterator[tuple[float, float]]:
        """(price, qty) of every bid, best (highest) first."""
        book = self._bids
        return ((p, book[p]) for p in reversed(self._bid_keys))

    def ask_levels(self) -> Iterator[tuple[float, float]]:
        """(price, qty) of every ask, best (lowest) first."""
        book = self._asks
        return ((-k, book[-k]) for k in reversed(self._ask_keys))

    def levels(self, side: Side) -> Iterator[tuple[float, float]]:
        """Resting levels of one book side, best first: ``Side.BUY`` is the bids."""
        return self.bid_levels() if side is Side.BUY else self.ask_levels()

    def bid_count(self) -> int:
        return len(self._bid_keys)

    def ask_count(self) -> int:
        return len(self._ask_keys)

    def bid_qty(self, price: float) -> float:
        """Quantity resting at exactly this bid price (0.0 if none)."""
        return self._bids.get(price, 0.0)

    def ask_qty(self, price: float) -> float:
        """Quantity resting at exactly this ask price (0.0 if none)."""
        return self._asks.get(price, 0.0)

    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The best ``n`` levels of each side: (bids best first, asks best first)."""
        if n <= 0:
            return [], []
        bids = self._bids
        asks = self._asks
        bid_keys = self._bid_keys[-n:]
        ask_keys = self._ask_keys[-n:]
        return (
            [(p, bids[p]) for p in reversed(bid_keys)],
            [(-k, asks[-k]) for k in reversed(ask_keys)],
        )

    def depth_within_bps(self, bps: float, side: Side | None = None) -> float:
        """Base quantity resting within ``bps`` of the mid (inclusive); None side sums both.

        ``Side.BUY`` counts the bids (prices >= mid * (1 - bps/1e4)), ``Side.SELL`` the asks
        (prices <= mid * (1 + bps/1e4)). 0.0 when there is no mid.
        """
        mid = self.mid()
        if mid is None:
            return 0.0
        total = 0.0
        if side is None or side is Side.BUY:
            floor = mid * (1.0 - bps * 1e-4)
            keys = self._bid_keys
            bids = self._bids
            for i in range(bisect_left(keys, floor), len(keys)):
                total += bids[keys[i]]
        if side is None or side is Side.SELL:
            ceiling = mid * (1.0 + bps * 1e-4)
            keys = self._ask_keys
            asks = self._asks
            # ask keys are -price: price <= ceiling  <=>  key >= -ceiling
            for i in range(bisect_left(keys, -ceiling), len(keys)):
                total += asks[-keys[i]]
        return total

    def depth_to_price(self, side: Side, price: float) -> float:
        """Base quantity on one side priced at or better than ``price`` (bids >= it, asks <= it)."""
        total = 0.0
        if side is Side.BUY:
            keys = self._bid_keys
            for i in range(bisect_left(keys, price), len(keys)):
                total += self._bids[keys[i]]
        else:
            keys = self._ask_keys
            for i in range(bisect_left(keys, -price), len(keys)):
                total += self._asks[-keys[i]]
        return total

    def fill_price(self, taker_side: Side, size: float) -> float | None:
        """Average price paid (BUY, walks the asks) or received (SELL, walks the bids) to take ``size``.

        None when the side holds less than ``size``; for ``size <= 0`` the best price (the
        limit of the average as the size shrinks), or None on an empty side.
        """
        levels = self.ask_levels() if taker_side is Side.BUY else self.bid_levels()
        if size <= 0.0:
            first = next(levels, None)
            return None if first is None else first[0]
        remaining = size
        cost = 0.0
        # a level that covers the rest but for float noise (1e-12 relative) completes the fill
        slack = size * 1e-12
        for price, qty in levels:
            if qty + slack >= remaining:
                cost += price * min(qty, remaining)
                return cost / size
            cost += price * qty
            remaining -= qty
        return None
