"""Fallback feed for any exchange ccxt pro supports: ``watch_order_book`` and ``watch_trades``.

A venue without a native handler still feeds the same ``L2Book``s, health and callbacks as
``connectors/binance/feed.py``. ccxt keeps its own book in sync (its exchange class knows
the venue's sequencing); each update it hands us replaces our book's contents (a snapshot
per update is fine at the rates a fallback serves). ccxt raises when its sync breaks (a
``ChecksumError`` on a gap, a ``NetworkError`` on a dropped socket): the book is then marked
RESYNCING or DISCONNECTED, the loop backs off and calls ``watch_*`` again, which makes ccxt
resubscribe and refetch its snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

import ccxt.pro as ccxtpro
import structlog
from ccxt.base.errors import BaseError, InvalidNonce, NetworkError

from connectors.backoff import Backoff
from connectors.feed import (
    BookCallback,
    FeedCallbacks,
    TradeCallback,
    ensure_symbols,
    mark_stale_books,
    set_health,
)
from strategies.book import L2Book
from strategies.clock import Clock, SystemClock
from strategies.types import Side, SyncState, Trade

log = structlog.get_logger(__name__)


class CcxtProFeed:
    """Books and trades of one venue through ccxt pro's unified ``watch_*`` methods."""

    def __init__(
        self,
        exchange_id: str,
        config: dict[str, Any],
        venue: str,
        symbols: Iterable[str],
        *,
        clock: Clock | None = None,
        stale_after_s: float = 5.0,
        on_book: BookCallback | None = None,
        on_trade: TradeCallback | None = None,
        on_health: BookCallback | None = None,
        depth: int = 100,
        watch_limit: int | None = None,
        trades: bool = True,
        exchange: Any | None = None,
    ) -> None:
        """``config`` goes to the ccxt constructor (URLs, keys, options); ``depth`` caps the levels
        copied per side on each update; ``exchange`` injects a ready ccxt pro instance."""
        if exchange is None and not hasattr(ccxtpro, exchange_id):
            raise ValueError(f"ccxt pro has no exchange {exchange_id!r}")
        self.exchange_id = exchange_id
        self.config = config
        self.venue = venue
        self.symbols = ensure_symbols(symbols)
        self.clock: Clock = clock or SystemClock()
        self.stale_after_s = stale_after_s
        defaults = FeedCallbacks()
        self.on_book: BookCallback = on_book or defaults.on_book
        self.on_trade: TradeCallback = on_trade or defaults.on_trade
        self.on_health: BookCallback = on_health or defaults.on_health
        self.depth = depth
        self.watch_limit = watch_limit
        self.trades = trades
        self.books: dict[str, L2Book] = {s: L2Book(venue, s) for s in self.symbols}
        self.errors = 0
        self._exchange: Any | None = exchange
        self._last_message: dict[str, float] = {}

    @property
    def exchange(self) -> Any:
        """The ccxt pro client (created on first use)."""
        if self._exchange is None:
            self._exchange = getattr(ccxtpro, self.exchange_id)(self.config)
        return self._exchange

    async def run(self) -> None:
        """Watch every symbol's book (and trades) until cancelled."""
        exchange = self.exchange
        loops = [self._watch_book(s) for s in self.symbols]
        if self.trades:
            loops += [self._watch_trades(s) for s in self.symbols]
        tasks = [asyncio.create_task(c) for c in loops]
        tasks.append(asyncio.create_task(self._watchdog()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for book in self.books.values():
                set_health(book, SyncState.DISCONNECTED, "feed stopped", self.on_health, count_resync=True)
            log.info("ccxt_feed_stopped", venue=self.venue, exchange=exchange.id)

    async def close(self) -> None:
        """Close ccxt's sockets and HTTP session."""
        if self._exchange is not None:
            await self._exchange.close()
        for book in self.books.values():
            set_health(book, SyncState.DISCONNECTED, "feed closed", self.on_health)

    def check_staleness(self, now: float | None = None) -> list[L2Book]:
        """Mark silent IN_SYNC books STALE; returns those that turned."""
        when = self.clock.time() if now is None else now
        return mark_stale_books(
            self.books.values(), self._last_message, when, self.stale_after_s, self.on_health
        )

    async def _watch_book(self, symbol: str) -> None:
        book = self.books[symbol]
        backoff = Backoff(base_s=0.1, cap_s=10.0, reset_after_s=10.0)
        set_health(book, SyncState.RESYNCING, "subscribing", self.on_health)
        while True:
            try:
                snapshot = await self.exchange.watch_order_book(symbol, self.watch_limit)
            except (BaseError, OSError, TimeoutError) as exc:
                self._on_error(book, exc)
                await asyncio.sleep(backoff.next_delay(self.clock.monotonic()))
                continue
            backoff.connected(self.clock.monotonic())
            now = self.clock.time()
            depth = self.depth
            nonce = snapshot.get("nonce")
            book.apply_snapshot(
                snapshot["bids"][:depth],
                snapshot["asks"][:depth],
                int(nonce) if nonce is not None else book.seq + 1,
                now,
            )
            self._last_message[symbol] = now
            book.health.last_update_ts = now
            if book.health.state is not SyncState.IN_SYNC:
                set_health(book, SyncState.IN_SYNC, "", self.on_health)
            self.on_book(book)

    def _on_error(self, book: L2Book, exc: BaseException) -> None:
        self.errors += 1
        # A broken sequence (ccxt's ChecksumError is an InvalidNonce, itself a NetworkError) is a
        # resync; other network errors mean the socket is gone.
        if isinstance(exc, InvalidNonce):
            state = SyncState.RESYNCING
        elif isinstance(exc, NetworkError | OSError):
            state = SyncState.DISCONNECTED
        else:
            state = SyncState.RESYNCING
        if set_health(book, state, f"{type(exc).__name__}: {exc}"[:300], self.on_health, count_resync=True):
            log.warning("ccxt_feed_error", venue=self.venue, symbol=book.symbol, error=repr(exc)[:300])

    async def _watch_trades(self, symbol: str) -> None:
        backoff = Backoff(base_s=0.1, cap_s=10.0, reset_after_s=10.0)
        while True:
            try:
                trades = await self.exchange.watch_trades(symbol)
            except (BaseError, OSError, TimeoutError) as exc:
                log.debug("ccxt_trades_error", venue=self.venue, symbol=symbol, error=repr(exc)[:300])
                await asyncio.sleep(backoff.next_delay(self.clock.monotonic()))
                continue
            backoff.connected(self.clock.monotonic())
            for raw in trades:
                trade = self._parse_trade(symbol, raw)
                if trade is not None:
                    self.on_trade(trade)

    def _parse_trade(self, symbol: str, raw: dict[str, Any]) -> Trade | None:
        price = raw.get("price")
        amount = raw.get("amount")
        if price is None or amount is None:
            return None
        trade_id = 0
        with contextlib.suppress(TypeError, ValueError):
            trade_id = int(raw.get("id") or 0)
        return Trade(
            venue=self.venue,
            symbol=symbol,
            price=float(price),
            qty=float(amount),
            # ccxt's side of a public trade is the taker's
            taker_side=Side.SELL if raw.get("side") == "sell" else Side.BUY,
            ts=float(raw.get("timestamp") or 0) / 1000.0,
            trade_id=trade_id,
        )

    async def _watchdog(self) -> None:
        interval = min(1.0, max(0.05, self.stale_after_s / 4))
        while True:
            await asyncio.sleep(interval)  # a cadence, not a synchronisation
            self.check_staleness()
