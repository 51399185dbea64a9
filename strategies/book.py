"""The local L2 order book of one symbol on one venue.

Hot path: the feed handler applies tens of thousands of depth updates per second. Each side
is a ``BookSide`` (``strategies/book_side.py``): compiled when the package is built with a C
compiler, with the best level last where changes cluster, and no Python object per level.
Prices and sizes are floats.

The book does not judge sequence numbers or health: the feed handler owns Binance's
bridging rules and sets ``health``; the book stores both for its readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from strategies.book_side import ACCELERATED, BookSide, Level, PyBookSide
from strategies.types import BookHealth, Side

__all__ = ["ACCELERATED", "DEFAULT_BOOK_DEPTH", "L2Book", "Level"]

DEFAULT_BOOK_DEPTH = 5000
"""Levels per side a live feed's book keeps unless configured otherwise (``venues.*.book_depth``)."""


class L2Book:
    """Aggregated price levels of one venue's book for one symbol.

    ``version`` grows by one on every applied snapshot or delta, so mirrors and strategies
    can tell cheaply whether anything changed since they last looked.
    """

    __slots__ = (
        "_asks",
        "_bids",
        "health",
        "max_depth",
        "seq",
        "symbol",
        "ts",
        "venue",
        "version",
    )

    def __init__(
        self, venue: str, symbol: str, max_depth: int | None = None, *, side_type: type[PyBookSide] = BookSide
    ) -> None:
        """``max_depth`` (levels per side) trims the far end after each change; None keeps all.
        ``side_type``: the side implementation (tests and benchmarks pick the Python one)."""
        if max_depth is not None and max_depth < 1:
            raise ValueError("max_depth must be at least 1 level")
        self.venue = venue
        self.symbol = symbol
        self.max_depth = max_depth
        self.seq = 0
        self.version = 0
        self.ts = 0.0
        self.health = BookHealth()
        self._bids = side_type(False, max_depth)
        self._asks = side_type(True, max_depth)

    def __repr__(self) -> str:
        return (
            f"L2Book({self.venue!r}, {self.symbol!r}, bid={self.best_bid()}, ask={self.best_ask()}, "
            f"levels={len(self._bids)}/{len(self._asks)}, seq={self.seq})"
        )

    # ------------------------------------------------------------------ updates

    def apply_snapshot(self, bids: Iterable[Level], asks: Iterable[Level], seq: int, ts: float) -> None:
        """Replace the whole book with a snapshot; as in a delta, a later level wins and 0 removes.

        All or nothing: a level that does not convert raises before the book changes.
        """
        side_type = type(self._bids)
        new_bids = side_type(False, self.max_depth)
        new_bids.apply(bids)
        new_asks = side_type(True, self.max_depth)
        new_asks.apply(asks)
        self._bids = new_bids
        self._asks = new_asks
        self.seq = seq
        self.ts = ts
        self.version += 1

    def apply_delta(self, bids: Iterable[Level], asks: Iterable[Level], seq: int, ts: float) -> None:
        """Apply absolute level quantities (strings or numbers); a quantity of 0 removes the level.

        A level that does not convert (or is not a ``[price, qty]`` pair) raises ``ValueError``
        or ``TypeError`` with the levels before it applied and ``seq`` unchanged: the feed's
        next event then reports a gap and the book is rebuilt from a snapshot.
        """
        self._bids.apply(bids)  # each side keeps at most max_depth levels
        self._asks.apply(asks)
        self.seq = seq
        self.ts = ts
        self.version += 1

    def clear(self) -> None:
        """Drop every level (e.g. before a resync); seq returns to 0, version still grows."""
        self._bids.clear()
        self._asks.clear()
        self.seq = 0
        self.version += 1

    # ------------------------------------------------------------------ top of book

    def best_bid(self) -> float | None:
        return self._bids.best()

    def best_ask(self) -> float | None:
        return self._asks.best()

    def best_bid_size(self) -> float:
        """Quantity at the best bid, 0.0 when the side is empty."""
        return self._bids.best_qty()

    def best_ask_size(self) -> float:
        """Quantity at the best ask, 0.0 when the side is empty."""
        return self._asks.best_qty()

    def mid(self) -> float | None:
        """Midpoint of best bid and ask; None unless both sides have a level."""
        bid = self._bids.best()
        ask = self._asks.best()
        if bid is None or ask is None:
            return None
        return (bid + ask) * 0.5

    def spread_bps(self) -> float | None:
        """(ask - bid) / mid in basis points; negative when the book is crossed."""
        bid = self._bids.best()
        ask = self._asks.best()
        if bid is None or ask is None:
            return None
        return (ask - bid) / ((ask + bid) * 0.5) * 1e4

    def is_crossed(self) -> bool:
        """True when best bid >= best ask: never in a healthy book, a sign of missed updates."""
        bid = self._bids.best()
        ask = self._asks.best()
        return bid is not None and ask is not None and bid >= ask

    def microprice(self) -> float | None:
        """Size-weighted mid (Stoikov): (bid * ask_size + ask * bid_size) / (bid_size + ask_size).

        It leans toward the side with less resting size, where the next trade more likely moves the price.
        """
        bid = self._bids.best()
        ask = self._asks.best()
        if bid is None or ask is None:
            return None
        bid_size = self._bids.best_qty()
        ask_size = self._asks.best_qty()
        return (bid * ask_size + ask * bid_size) / (bid_size + ask_size)

    # ------------------------------------------------------------------ depth

    def bid_levels(self) -> Iterator[tuple[float, float]]:
        """(price, qty) of every bid, best (highest) first."""
        return self._bids.levels()

    def ask_levels(self) -> Iterator[tuple[float, float]]:
        """(price, qty) of every ask, best (lowest) first."""
        return self._asks.levels()

    def levels(self, side: Side) -> Iterator[tuple[float, float]]:
        """Resting levels of one book side, best first: ``Side.BUY`` is the bids."""
        return self._bids.levels() if side is Side.BUY else self._asks.levels()

    def bid_count(self) -> int:
        return len(self._bids)

    def ask_count(self) -> int:
        return len(self._asks)

    def bid_qty(self, price: float) -> float:
        """Quantity resting at exactly this bid price (0.0 if none)."""
        return self._bids.qty(price)

    def ask_qty(self, price: float) -> float:
        """Quantity resting at exactly this ask price (0.0 if none)."""
        return self._asks.qty(price)

    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The best ``n`` levels of each side: (bids best first, asks best first)."""
        return self._bids.top(n), self._asks.top(n)

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
            total += self._bids.depth_to(mid * (1.0 - bps * 1e-4))
        if side is None or side is Side.SELL:
            total += self._asks.depth_to(mid * (1.0 + bps * 1e-4))
        return total

    def depth_to_price(self, side: Side, price: float) -> float:
        """Base quantity on one side priced at or better than ``price`` (bids >= it, asks <= it)."""
        return (self._bids if side is Side.BUY else self._asks).depth_to(price)

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
