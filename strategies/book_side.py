"""One side of an L2 book: price levels kept sorted with the best level last.

``BookSide`` is the compiled side (``strategies/_book_side.c``: two C arrays, a level found
by galloping back from the best, where Binance's changes cluster) when the package was built
with a C compiler, else ``PyBookSide``, the same behaviour in Python (a dict price -> qty
plus a sorted key list) and the reference the tests hold the compiled one to.

Keys are the prices, or the negated prices for asks (``negate=True``), so "best" is always
the last key. Levels arrive as ``[price, qty]`` pairs exactly as ``orjson`` parses a Binance
frame (strings) or as numbers; a price string always converts to the same float
(``float()``'s correctly rounded value), so a level's key is stable. A quantity of 0 (or
below) removes the level; a price that is not a number is refused with ``ValueError``.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Sequence

Level = Sequence[str | float]
"""One wire level: ``[price, qty]`` (extra fields, e.g. an order count, are ignored)."""


class PyBookSide:
    """One book side in Python: ``_levels`` price -> qty, ``_keys`` ascending (best last)."""

    __slots__ = ("_keys", "_levels", "_limit", "_negate")

    def __init__(self, negate: bool = False, limit: int | None = None) -> None:
        """``limit``: levels kept after each ``apply`` (the worst dropped); None keeps all."""
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1 level")
        self._levels: dict[float, float] = {}
        self._keys: list[float] = []
        self._negate = negate
        self._limit = limit

    def __len__(self) -> int:
        return len(self._keys)

    def apply(self, levels: Iterable[Level]) -> None:
        """Set each ``[price, qty]``; a quantity <= 0 removes the level; then keep ``limit`` levels."""
        book = self._levels
        keys = self._keys
        negate = self._negate
        for lv in levels:
            if (type(lv) is not list and type(lv) is not tuple) or len(lv) < 2:
                raise ValueError("a level must be a [price, qty] list or tuple")
            price = float(lv[0])
            qty = float(lv[1])
            if price != price:
                raise ValueError("a level's price is not a number")
            if qty > 0.0:
                if price not in book:
                    insort(keys, -price if negate else price)
                book[price] = qty
            elif book.pop(price, None) is not None:
                del keys[bisect_left(keys, -price if negate else price)]
        if self._limit is not None:
            self.trim(self._limit)

    def clear(self) -> None:
        """Drop every level."""
        self._levels = {}
        self._keys = []

    def trim(self, limit: int) -> None:
        """Keep only the best ``limit`` levels."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        excess = len(self._keys) - limit
        if excess > 0:  # the worst levels sit at the front
            book = self._levels
            for key in self._keys[:excess]:
                del book[-key if self._negate else key]
            del self._keys[:excess]

    def best(self) -> float | None:
        """The best price, or None when empty."""
        if not self._keys:
            return None
        key = self._keys[-1]
        return -key if self._negate else key

    def best_qty(self) -> float:
        """Quantity at the best price, 0.0 when empty."""
        if not self._keys:
            return 0.0
        key = self._keys[-1]
        return self._levels[-key if self._negate else key]

    def qty(self, price: float) -> float:
        """Quantity resting at exactly this price (0.0 if none)."""
        return self._levels.get(price, 0.0)

    def depth_to(self, price: float) -> float:
        """Quantity priced at or better than ``price``."""
        keys = self._keys
        book = self._levels
        negate = self._negate
        total = 0.0
        for i in range(bisect_left(keys, -price if negate else price), len(keys)):
            key = keys[i]
            total += book[-key if negate else key]
        return total

    def top(self, n: int) -> list[tuple[float, float]]:
        """The best ``n`` levels as (price, qty), best first."""
        if n <= 0:
            return []
        book = self._levels
        if self._negate:
            return [(-k, book[-k]) for k in reversed(self._keys[-n:])]
        return [(k, book[k]) for k in reversed(self._keys[-n:])]

    def levels(self) -> Iterator[tuple[float, float]]:
        """(price, qty) of every level, best first."""
        book = self._levels
        if self._negate:
            return ((-k, book[-k]) for k in reversed(self._keys))
        return ((k, book[k]) for k in reversed(self._keys))


BookSide: type[PyBookSide]
try:
    from strategies._book_side import Side as _CompiledSide
except ImportError:  # built without a C compiler
    BookSide = PyBookSide
else:
    BookSide = _CompiledSide  # type: ignore[assignment]
ACCELERATED = BookSide is not PyBookSide
"""True when the compiled side is in use (benchmarks print it; a test insists on it)."""
