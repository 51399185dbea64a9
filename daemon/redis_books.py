"""Consumer mode: books read from Redis (published by another stackmm process) instead of venues.

``RedisBookReader`` subscribes to the publisher's ``book_updates`` channel, re-reads a book's
hash each time its key is announced, and keeps a local ``L2Book`` per (venue, symbol) with
the publisher's contents, sequence and health. It calls ``on_book`` / ``on_health`` like a
feed does, so the daemon can run strategies on it in place of venue feeds.

Safety nets: a periodic full refresh (missed notifications, a reader started late, keys
discovered later), and a staleness check: the publisher rewrites every book at least once
per heartbeat, so a book whose hash has not been rewritten for ``stale_after_s`` is marked
STALE here (``publisher silent``) even if the publisher's last word was IN_SYNC. If Redis
itself is unreachable the same happens, and the reader reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
import structlog

from connectors.backoff import Backoff
from connectors.feed import BookCallback, FeedCallbacks, set_health
from daemon.redis_keys import RedisKeys
from daemon.redis_mirror import AGGREGATED_VENUE, REDIS_ERRORS, connect_redis
from strategies.book import L2Book
from strategies.clock import Clock, SystemClock
from strategies.types import SyncState

log = structlog.get_logger(__name__)

BookId = tuple[str, str]  # (venue, symbol); aggregated books use venue "agg"


@dataclass(slots=True)
class _Remote:
    """What we last saw of one published hash."""

    version: int = -1
    published_ts: float = 0.0
    heard_at: float = 0.0  # our monotonic clock when the publisher last rewrote the hash


@dataclass(slots=True)
class ReaderStats:
    notifications: int = 0
    loads: int = 0
    refreshes: int = 0
    failures: int = 0


class RedisBookReader:
    """Local mirrors of the books another process publishes under ``instance``'s keys."""

    def __init__(
        self,
        redis: str | aioredis.Redis,
        instance: str,
        *,
        books: Iterable[BookId] | None = None,
        include_aggregated: bool = False,
        clock: Clock | None = None,
        stale_after_s: float = 3.0,
        refresh_interval_s: float = 1.0,
        on_book: BookCallback | None = None,
        on_health: BookCallback | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        """``books`` selects (venue, symbol) pairs; None discovers every published book."""
        self._owns_client = isinstance(redis, str)
        self._redis: aioredis.Redis = connect_redis(redis) if isinstance(redis, str) else redis
        self.keys = RedisKeys(instance)
        self.include_aggregated = include_aggregated
        self.clock: Clock = clock or SystemClock()
        self.stale_after_s = stale_after_s
        self.refresh_interval_s = refresh_interval_s
        defaults = FeedCallbacks()
        self.on_book: BookCallback = on_book or defaults.on_book
        self.on_health: BookCallback = on_health or defaults.on_health
        self.backoff = backoff or Backoff(base_s=0.1, cap_s=5.0, reset_after_s=5.0)
        self.stats = ReaderStats()
        self.books: dict[BookId, L2Book] = {}
        self._discover = books is None
        self._wanted: dict[str, BookId] = {}  # hash key -> book id
        for venue, symbol in books or ():
            self._wanted[self._key(venue, symbol)] = (venue, symbol)
        self._remote: dict[str, _Remote] = {}
        self._ready = asyncio.Event()

    def _key(self, venue: str, symbol: str) -> str:
        if venue == AGGREGATED_VENUE:
            return self.keys.aggregated_book(symbol)
        return self.keys.book(venue, symbol)

    def book(self, venue: str, symbol: str) -> L2Book | None:
        return self.books.get((venue, symbol))

    async def wait_ready(self) -> None:
        """Return after the first full load (subscribed and every known book read)."""
        await self._ready.wait()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Follow the publisher until cancelled; reconnects to Redis by itself."""
        while True:
            try:
                await self._follow()
            except REDIS_ERRORS as exc:
                self.stats.failures += 1
                delay = self.backoff.next_delay(self.clock.monotonic())
                log.warning("redis_books_unavailable", error=repr(exc), retry_in_s=round(delay, 3))
                self.check_staleness()
                await asyncio.sleep(delay)

    async def close(self) -> None:
        for book in self.books.values():
            set_health(book, SyncState.DISCONNECTED, "reader closed", self.on_health)
        if self._owns_client:
            await self._redis.aclose()

    async def _follow(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.keys.book_updates)
            await self.refresh()
            self.backoff.connected(self.clock.monotonic())
            self._ready.set()
            next_refresh = self.clock.monotonic() + self.refresh_interval_s
            task = asyncio.current_task()
            while True:
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError  # a library swallowed it on the way: honour it
                timeout = max(0.0, next_refresh - self.clock.monotonic())
                message = await pubsub.get_message(timeout=timeout)
                if message is not None and message.get("type") == "message":
                    self.stats.notifications += 1
                    data = message["data"]
                    key = data.decode() if isinstance(data, bytes) else str(data)
                    if self._tracks(key):
                        await self._load(key)
                if self.clock.monotonic() >= next_refresh:
                    await self.refresh()
                    next_refresh = self.clock.monotonic() + self.refresh_interval_s
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.aclose()

    # ------------------------------------------------------------------ loading

    def _tracks(self, key: str) -> bool:
        if key in self._wanted:
            return True
        if not self._discover:
            return False
        if key.startswith(self.keys.aggregated_book("")):
            return self.include_aggregated
        return key.startswith(f"{self.keys.prefix}:book:")

    async def refresh(self) -> None:
        """Re-read every tracked book (discovering new ones) and mark silent ones stale."""
        self.stats.refreshes += 1
        keys = set(self._wanted)
        if self._discover:
            async for raw in self._redis.scan_iter(match=f"{self.keys.prefix}:book:*", count=500):
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                if self._tracks(key):
                    keys.add(key)
        for key in sorted(keys):
            await self._load(key)
        self.check_staleness()

    async def _load(self, key: str) -> None:
        raw = await self._redis.hgetall(key)
        if not raw:
            return
        self.stats.loads += 1
        fields = {_text(k): _text(v) for k, v in raw.items()}
        venue = fields["venue"]
        symbol = fields["symbol"]
        version = int(fields["version"])
        published_ts = float(fields.get("published_ts", 0.0))
        remote = self._remote.setdefault(key, _Remote())
        if published_ts != remote.published_ts:
            remote.published_ts = published_ts
            remote.heard_at = self.clock.monotonic()
        book = self.books.get((venue, symbol))
        if book is None:
            book = self.books[(venue, symbol)] = L2Book(venue, symbol)
            self._wanted.setdefault(key, (venue, symbol))
        state = SyncState(fields["state"])
        health = book.health
        changed = version != remote.version
        if changed:
            remote.version = version
            bids = orjson.loads(fields["bids"])
            asks = orjson.loads(fields["asks"])
            book.apply_snapshot(bids, asks, int(fields["seq"]), float(fields["ts"]))
        health.last_update_ts = float(fields.get("last_update_ts", 0.0))
        health.resync_count = int(fields.get("resync_count", 0))
        reason = fields.get("reason", "")
        if self._silent(remote):
            state, reason = SyncState.STALE, "publisher silent"
        set_health(book, state, reason, self.on_health)
        if changed:
            self.on_book(book)

    # ------------------------------------------------------------------ staleness

    def _silent(self, remote: _Remote) -> bool:
        return self.clock.monotonic() - remote.heard_at > self.stale_after_s

    def check_staleness(self) -> list[L2Book]:
        """Mark books whose publisher stopped rewriting them STALE; returns those that turned."""
        turned: list[L2Book] = []
        for key, remote in self._remote.items():
            ident = self._wanted.get(key)
            book = self.books.get(ident) if ident else None
            if book is None or book.health.state is not SyncState.IN_SYNC:
                continue
            if self._silent(remote):
                set_health(book, SyncState.STALE, "publisher silent", self.on_health)
                turned.append(book)
        return turned


def _text(value: bytes | str) -> str:
    """Hash fields as text whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value
