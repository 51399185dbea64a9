"""What every market-data feed shares: the callback interface, health transitions, backoff.

A feed (the native Binance handler, the ccxt pro fallback, the Redis consumer) owns one
``L2Book`` per symbol, keeps its ``health`` truthful and calls back synchronously:

- ``on_book(book)`` right after each applied change, in the same loop iteration, so the
  strategy reacts to the update that changed its quotes;
- ``on_trade(trade)`` for each public trade;
- ``on_health(book)`` when a book's health state (or resync count) changes.

The daemon wires any feed the same way through the ``Feed`` protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from strategies.book import L2Book
from strategies.types import SyncState, Trade

BookCallback = Callable[[L2Book], None]
TradeCallback = Callable[[Trade], None]


def _ignore_book(book: L2Book) -> None:
    """Default callback: nobody listens."""


def _ignore_trade(trade: Trade) -> None:
    """Default callback: nobody listens."""


@dataclass(slots=True)
class FeedCallbacks:
    """The three ways a feed reports upward; defaults do nothing."""

    on_book: BookCallback = _ignore_book
    on_trade: TradeCallback = _ignore_trade
    on_health: BookCallback = _ignore_book


class Feed(Protocol):
    """A source of books for one venue (or, for the Redis consumer, several)."""

    @property
    def books(self) -> dict[str, L2Book]:
        """Symbol (ccxt unified) -> local book."""
        ...

    async def run(self) -> None:
        """Stream until cancelled; reconnects and resyncs by itself."""
        ...

    async def close(self) -> None:
        """Release sockets and sessions; books are marked disconnected."""
        ...


def set_health(
    book: L2Book,
    state: SyncState,
    reason: str,
    on_health: BookCallback,
    *,
    count_resync: bool = False,
) -> bool:
    """Move ``book`` to ``state``; call ``on_health`` if the state changed. Returns whether it did.

    ``count_resync`` adds one to the resync count when a book that was trusted (in sync or
    merely stale) loses sync, so repeated snapshot retries of one episode count once.
    """
    health = book.health
    previous = health.state
    if count_resync and previous in (SyncState.IN_SYNC, SyncState.STALE):
        health.resync_count += 1
    health.reason = reason
    if previous is state:
        return False
    health.state = state
    on_health(book)
    return True


def mark_stale_books(
    books: Iterable[L2Book],
    last_message: dict[str, float],
    now: float,
    stale_after_s: float,
    on_health: BookCallback,
) -> list[L2Book]:
    """Mark IN_SYNC books STALE when their symbol has been silent beyond ``stale_after_s``.

    ``last_message`` maps symbol -> clock time of the last message seen for it (applied or
    not). Returns the books that turned stale. A stale book returns to IN_SYNC when the feed
    applies the next in-sequence update.
    """
    turned: list[L2Book] = []
    for book in books:
        if book.health.state is not SyncState.IN_SYNC:
            continue
        seen = last_message.get(book.symbol, 0.0)
        if now - seen > stale_after_s:
            set_health(book, SyncState.STALE, f"no update for {now - seen:.1f}s", on_health)
            turned.append(book)
    return turned


def wire_symbol(symbol: str) -> str:
    """Binance-style wire id of a ccxt unified symbol: ``BERA/USDT`` -> ``BERAUSDT``."""
    return symbol.replace("/", "").upper()


def ensure_symbols(symbols: Iterable[str]) -> list[str]:
    """Validate and de-duplicate unified symbols, keeping their order."""
    seen: list[str] = []
    for symbol in symbols:
        if "/" not in symbol:
            raise ValueError(f"symbol {symbol!r} is not ccxt unified (BASE/QUOTE)")
        if symbol not in seen:
            seen.append(symbol)
    if not seen:
        raise ValueError("a feed needs at least one symbol")
    return seen


__all__ = [
    "BookCallback",
    "Feed",
    "FeedCallbacks",
    "TradeCallback",
    "ensure_symbols",
    "mark_stale_books",
    "set_health",
    "wire_symbol",
]
