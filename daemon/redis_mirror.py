"""Mirror of the in-memory books and trades to Redis: coalesced, pipelined, never in the feed's way.

The feed calls ``mark_dirty(book)`` and ``add_trade(trade)``: synchronous, O(1), they only
remember what changed; the combined books a venue book feeds follow it (``watch_aggregated``),
or are marked with ``mark_dirty_aggregated(symbol, combined)``. ``run()`` flushes
at most once per ``interval_s`` (default 50 ms): every dirty book becomes one ``HSET`` of its
hash plus one ``PUBLISH`` of its key on ``book_updates``, every buffered trade one
``XADD ... MAXLEN ~``, all in one pipelined round trip.

When Redis is down or slow the feed does not notice: a book that changes many times while
a flush is failing is still written once (its latest state), trades wait in a bounded
buffer (oldest dropped first, counted in ``stats.dropped_trades``), and the mirror retries
with backoff and catches up when Redis returns. Every known book is also rewritten every
``heartbeat_s`` so consumers can tell a quiet book from a dead publisher.

Book hash fields (``RedisKeys.book(venue, symbol)``): ``kind`` (venue), ``venue``, ``symbol``,
``bids``/``asks`` (JSON ``[[price, qty], ...]`` best first, top N), ``seq``, ``version``,
``ts``, ``state``, ``resync_count``, ``reason``, ``last_update_ts`` and ``published_ts``
(publisher clock, seconds). Aggregated hashes (``RedisKeys.aggregated_book(symbol)``) have
``kind`` = aggregated, the same ``bids``/``asks``, ``shares`` (JSON ``{"bids": [{venue:
share}, ...], "asks": [...]}`` per level), ``venues``, ``excluded``, ``version`` and ``ts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from connectors.backoff import Backoff
from daemon.redis_keys import RedisKeys
from strategies.aggregator import CombinedBook
from strategies.book import L2Book
from strategies.clock import Clock, SystemClock
from strategies.types import SyncState, Trade

log = structlog.get_logger(__name__)

REDIS_ERRORS = (RedisError, OSError, TimeoutError)
"""What a Redis call raises when the server is down, slow or gone."""

AGGREGATED_VENUE = "agg"
"""The venue label an aggregated book carries when read back (its key is ``book:agg:<symbol>``)."""


def connect_redis(url: str, timeout_s: float = 2.0) -> aioredis.Redis:
    """A client for the mirror/consumer: bounded timeouts and no hidden retries (callers back off)."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


Feeds = Callable[[L2Book], Iterable[str]]
"""The combined symbols a venue book feeds (``Aggregator.feeds``)."""


@dataclass(slots=True)
class MirrorStats:
    """Counters for status output and tests."""

    flushes: int = 0
    book_writes: int = 0
    trade_writes: int = 0
    dropped_trades: int = 0
    failures: int = 0
    connected: bool = False


class RedisMirror:
    """Writes books (per venue and aggregated) and trades to Redis under one instance's keys."""

    def __init__(
        self,
        redis: str | aioredis.Redis,
        keys: RedisKeys,
        *,
        interval_s: float = 0.05,
        trade_maxlen: int = 10_000,
        top_n: int = 50,
        trade_buffer: int = 50_000,
        heartbeat_s: float = 1.0,
        max_trades_per_flush: int = 5_000,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._owns_client = isinstance(redis, str)
        self._redis: aioredis.Redis = connect_redis(redis) if isinstance(redis, str) else redis
        self.keys = keys
        self.interval_s = interval_s
        self.trade_maxlen = trade_maxlen
        self.top_n = top_n
        self.heartbeat_s = heartbeat_s
        self.max_trades_per_flush = max_trades_per_flush
        self.clock: Clock = clock or SystemClock()
        self.backoff = backoff or Backoff(base_s=0.1, cap_s=5.0, reset_after_s=5.0)
        self.stats = MirrorStats()
        self._dirty: dict[str, L2Book] = {}
        self._dirty_aggregated: dict[str, CombinedBook | Callable[[], CombinedBook]] = {}
        self._known: dict[str, L2Book] = {}  # every book ever marked: rewritten on heartbeat
        self._keys_by_book: dict[L2Book, str] = {}  # by identity: the live book objects
        # (which combined symbols a book feeds, the merge of one): set by watch_aggregated
        self._aggregated: tuple[Feeds, Callable[[str], CombinedBook]] | None = None
        self._aggregated_versions: dict[str, int] = {}
        self._trades: deque[Trade] = deque(maxlen=trade_buffer)
        self._wake = asyncio.Event()
        self._last_flush = -1e18
        self._last_heartbeat = -1e18
        self._flushed = asyncio.Event()  # replaced after each flush: waiters see the next one
        self._failed = asyncio.Event()

    # ------------------------------------------------------------------ called by the feed (sync, O(1))

    def mark_dirty(self, book: L2Book) -> None:
        """Remember that ``book`` changed; its latest state is written at the next flush."""
        # The feed calls this on every update: one identity lookup, and the writer is woken
        # only when the first change since its last flush arrives.
        key = self._keys_by_book.get(book)
        if key is None:
            key = self._register(book)
        dirty = self._dirty
        if not dirty:
            self._wake.set()
        dirty[key] = book

    def _register(self, book: L2Book) -> str:
        key = self.keys.book(book.venue, book.symbol)
        replaced = self._known.get(key)
        if replaced is not None:
            self._keys_by_book.pop(replaced, None)  # a new live book for the same venue and symbol
        self._known[key] = book
        self._keys_by_book[book] = key
        return key

    def mark_dirty_aggregated(self, symbol: str, combined: CombinedBook | Callable[[], CombinedBook]) -> None:
        """Remember the latest combined book of ``symbol`` for the next flush.

        Pass a callable (e.g. ``functools.partial(aggregator.combined, symbol)``, built once) to
        merge the combined book only when it is written, at most once per interval, rather than
        on every venue update.
        """
        dirty = self._dirty_aggregated
        if not dirty:
            self._wake.set()
        dirty[symbol] = combined

    def watch_aggregated(self, feeds: Feeds, combined: Callable[[str], CombinedBook]) -> None:
        """Also write, at each flush, the combined book of every symbol a dirty book ``feeds``.

        With ``feeds=aggregator.feeds`` a venue update costs the feed one ``mark_dirty`` call:
        which combined views it moved is worked out once per flush, and ``combined(symbol)``
        merges each of them only then.
        """
        self._aggregated = (feeds, combined)

    def add_trade(self, trade: Trade) -> None:
        """Queue a trade for its stream; when the buffer is full the oldest is dropped and counted."""
        trades = self._trades
        if len(trades) == trades.maxlen:
            self.stats.dropped_trades += 1
        trades.append(trade)
        self._wake.set()

    @property
    def pending(self) -> int:
        """Books, combined books and trades waiting for the next successful flush."""
        return len(self._dirty) + len(self._dirty_aggregated) + len(self._trades)

    # ------------------------------------------------------------------ the writer

    async def run(self) -> None:
        """Flush until cancelled; Redis errors are absorbed, logged on change, and retried."""
        task = asyncio.current_task()
        while True:
            if task is not None and task.cancelling():
                # A cancellation was swallowed on the way (a library caught CancelledError while
                # a flush finished): honour it rather than mirror forever.
                raise asyncio.CancelledError
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # lands as the wake-up completes, and the mirror would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat_s):
                    await self._wake.wait()
            self._wake.clear()
            if self.clock.monotonic() - self._last_heartbeat >= self.heartbeat_s:
                # rewrite every book now and then, changed or not: consumers see the publisher alive
                self._last_heartbeat = self.clock.monotonic()
                self._dirty.update(self._known)
            wait = self._last_flush + self.interval_s - self.clock.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # coalesce: at most one write per book per interval
            if not self.pending:
                continue
            try:
                await self.flush()
            except REDIS_ERRORS as exc:
                delay = self.backoff.next_delay(self.clock.monotonic())
                if self.stats.connected or self.stats.failures == 1:
                    log.warning("redis_mirror_unavailable", error=repr(exc), retry_in_s=round(delay, 3))
                self.stats.connected = False
                await asyncio.sleep(delay)
                self._wake.set()
            else:
                if not self.stats.connected:
                    log.info("redis_mirror_connected", pending=self.pending)
                self.stats.connected = True
                self.backoff.connected(self.clock.monotonic())

    async def flush(self) -> None:
        """Write everything dirty now in one pipeline; on failure keep it for the next attempt."""
        books, self._dirty = self._dirty, {}
        combined, self._dirty_aggregated = self._dirty_aggregated, {}
        if self._aggregated is not None:
            feeds, merge = self._aggregated
            for book in books.values():
                for symbol in feeds(book):
                    if symbol not in combined:
                        combined[symbol] = functools.partial(merge, symbol)
        trades = self._take_trades()
        now = self.clock.time()
        self._last_flush = self.clock.monotonic()
        pipe = self._redis.pipeline(transaction=False)
        channel = self.keys.book_updates
        for key, book in books.items():
            pipe.hset(key, mapping=self._book_fields(book, now))
            pipe.publish(channel, key)
        for symbol, comb in combined.items():
            key = self.keys.aggregated_book(symbol)
            view = comb() if callable(comb) else comb
            pipe.hset(key, mapping=self._aggregated_fields(symbol, view, now))
            pipe.publish(channel, key)
        for trade in trades:
            pipe.xadd(
                self.keys.trades(trade.venue, trade.symbol),
                {
                    "price": repr(trade.price),
                    "qty": repr(trade.qty),
                    "side": trade.taker_side.value,
                    "ts": repr(trade.ts),
                    "id": str(trade.trade_id),
                },
                maxlen=self.trade_maxlen,
                approximate=True,
            )
        try:
            await pipe.execute()
        except REDIS_ERRORS:
            self.stats.failures += 1
            self._restore(books, combined, trades)
            self._failed, failed = asyncio.Event(), self._failed
            failed.set()
            raise
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await pipe.reset()
        self.stats.flushes += 1
        self.stats.book_writes += len(books) + len(combined)
        self.stats.trade_writes += len(trades)
        self._flushed, flushed = asyncio.Event(), self._flushed
        flushed.set()

    async def next_flush(self) -> None:
        """Return after the next successful flush."""
        await self._flushed.wait()

    async def next_failure(self) -> None:
        """Return after the next failed flush (Redis down or too slow)."""
        await self._failed.wait()

    async def drained(self) -> None:
        """Return once everything marked so far is in Redis (waits through outages)."""
        while self.pending:
            await self.next_flush()

    async def close(self) -> None:
        """Close the client if the mirror created it (pending writes are not flushed)."""
        if self._owns_client:
            await self._redis.aclose()

    # ------------------------------------------------------------------ helpers

    def _take_trades(self) -> list[Trade]:
        trades = self._trades
        n = min(len(trades), self.max_trades_per_flush)
        taken = [trades.popleft() for _ in range(n)]
        if trades:
            self._wake.set()  # more than one flush's worth: go again
        return taken

    def _restore(
        self,
        books: dict[str, L2Book],
        combined: dict[str, CombinedBook | Callable[[], CombinedBook]],
        trades: list[Trade],
    ) -> None:
        # Anything re-marked since the failed flush is newer: keep it, fill in the rest.
        for key, book in books.items():
            self._dirty.setdefault(key, book)
        for symbol, comb in combined.items():
            self._dirty_aggregated.setdefault(symbol, comb)
        buffer = self._trades
        for trade in reversed(trades):  # oldest ends up first again
            if len(buffer) == buffer.maxlen:
                self.stats.dropped_trades += 1  # newer trades already fill the buffer
                continue
            buffer.appendleft(trade)

    def _book_fields(self, book: L2Book, now: float) -> dict[FieldT, EncodableT]:
        bids, asks = book.top(self.top_n)
        health = book.health
        return {
            "kind": "venue",
            "venue": book.venue,
            "symbol": book.symbol,
            "bids": orjson.dumps(bids),
            "asks": orjson.dumps(asks),
            "seq": book.seq,
            "version": book.version,
            "ts": repr(book.ts),
            "state": health.state.value,
            "resync_count": health.resync_count,
            "reason": health.reason,
            "last_update_ts": repr(health.last_update_ts),
            "published_ts": repr(now),
        }

    def _aggregated_fields(
        self, symbol: str, combined: CombinedBook, now: float
    ) -> dict[FieldT, EncodableT]:
        version = self._aggregated_versions.get(symbol, 0) + 1
        self._aggregated_versions[symbol] = version
        bids = combined.bids[: self.top_n]
        asks = combined.asks[: self.top_n]
        usable = bool(combined.venues) and bool(bids or asks)
        return {
            "kind": "aggregated",
            "venue": AGGREGATED_VENUE,
            "symbol": symbol,
            "bids": orjson.dumps([(lv.price, lv.qty) for lv in bids]),
            "asks": orjson.dumps([(lv.price, lv.qty) for lv in asks]),
            "shares": orjson.dumps({"bids": [lv.shares for lv in bids], "asks": [lv.shares for lv in asks]}),
            "venues": orjson.dumps(combined.venues),
            "excluded": orjson.dumps(combined.excluded),
            "seq": version,
            "version": version,
            "ts": repr(now),
            "state": (SyncState.IN_SYNC if usable else SyncState.RESYNCING).value,
            "resync_count": 0,
            "reason": "" if usable else "no venue in sync",
            "last_update_ts": repr(now),
            "published_ts": repr(now),
        }
