"""The Redis mirror against a real redis-server: layout, coalescing, bounded streams, outages."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis

from connectors.backoff import Backoff
from daemon.redis_keys import RedisKeys
from daemon.redis_mirror import RedisMirror
from daemon.redis_server import RedisServer
from strategies.aggregator import Aggregator, CombinedBook, CombinedBookSpec
from strategies.book import L2Book
from strategies.types import Side, SyncState, Trade


def _book(venue: str = "alpha", symbol: str = "BERA/USDT", mid: float = 2.0) -> L2Book:
    book = L2Book(venue, symbol)
    book.apply_snapshot(
        [[mid - i * 0.001, float(i)] for i in range(1, 80)],
        [[mid + i * 0.001, float(i)] for i in range(1, 80)],
        seq=100,
        ts=1_700_000_000.0,
    )
    book.health.state = SyncState.IN_SYNC
    book.health.last_update_ts = 1_700_000_000.0
    return book


def _trade(i: int, venue: str = "alpha") -> Trade:
    return Trade(venue, "BERA/USDT", 2.0 + i * 1e-4, 1.0 + i, Side.BUY if i % 2 else Side.SELL, 1.7e9 + i, i)


@contextlib.asynccontextmanager
async def running(mirror: RedisMirror) -> AsyncIterator[RedisMirror]:
    task = asyncio.create_task(mirror.run())
    try:
        yield mirror
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await mirror.close()


async def _next_update(pubsub: aioredis.client.PubSub, within: float = 5.0) -> str:
    """The next key announced on the book-updates channel (subscribe confirmations skipped)."""
    async with asyncio.timeout(within):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=within)
            if message is not None:
                return message["data"].decode()  # type: ignore[no-any-return]


async def test_book_hash_holds_top_n_seq_version_and_health(
    redis_client: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    book = _book()
    book.health.resync_count = 2
    mirror = RedisMirror(redis_url, keys, top_n=50)
    mirror.mark_dirty(book)
    await mirror.flush()
    await mirror.close()
    raw: dict[bytes, bytes] = await redis_client.hgetall(keys.book("alpha", "BERA/USDT"))  # type: ignore[assignment]
    stored = {k.decode(): v.decode() for k, v in raw.items()}
    bids, asks = book.top(50)
    assert orjson.loads(stored["bids"]) == [list(level) for level in bids]
    assert orjson.loads(stored["asks"]) == [list(level) for level in asks]
    assert len(orjson.loads(stored["bids"])) == 50
    assert int(stored["seq"]) == 100
    assert int(stored["version"]) == book.version
    assert stored["state"] == "in_sync"
    assert int(stored["resync_count"]) == 2
    assert float(stored["last_update_ts"]) == 1_700_000_000.0
    assert stored["venue"] == "alpha" and stored["symbol"] == "BERA/USDT" and stored["kind"] == "venue"


async def test_burst_of_changes_is_coalesced_into_one_write_per_interval(
    redis_client: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    book = _book()
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(keys.book_updates)
    mirror = RedisMirror(redis_url, keys, interval_s=0.05, heartbeat_s=60.0)
    async with running(mirror):
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(2000):
            book.apply_delta([[2.0 - 0.001, float(i + 1)]], [], seq=101 + i, ts=1.7e9 + i)
            mirror.mark_dirty(book)
            if i % 100 == 0:
                await asyncio.sleep(0)  # let the loop breathe as a live feed would
        elapsed = loop.time() - started
        assert await _next_update(pubsub) == keys.book("alpha", "BERA/USDT")
        key = keys.book("alpha", "BERA/USDT")
        await asyncio.wait_for(mirror.drained(), 5)
        assert int(await redis_client.hget(key, "seq") or 0) == 2100
        writes = mirror.stats.book_writes
        await pubsub.aclose()
    assert writes <= elapsed / 0.05 + 2, (writes, elapsed)
    assert writes < 2000 / 10


async def test_trades_go_to_a_bounded_stream_in_order(
    redis_client: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    mirror = RedisMirror(redis_url, keys, trade_maxlen=1000, max_trades_per_flush=2000)
    for i in range(5000):
        mirror.add_trade(_trade(i))
    while mirror.pending:
        await mirror.flush()
    await mirror.close()
    stream = keys.trades("alpha", "BERA/USDT")
    length = await redis_client.xlen(stream)
    assert 1000 <= length < 1300  # MAXLEN ~ trims in whole nodes
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await redis_client.xrevrange(stream, count=1)  # type: ignore[assignment]
    ((_, last),) = entries
    assert last == {b"price": repr(2.0 + 4999e-4).encode(), b"qty": b"5000.0", b"side": b"buy",
                    b"ts": repr(1.7e9 + 4999).encode(), b"id": b"4999"}
    assert mirror.stats.trade_writes == 5000


async def test_aggregated_book_is_mirrored_with_liquidity_shares(
    redis_client: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    aggregator = Aggregator([CombinedBookSpec(symbol="BERA/USDT", venues=["alpha", "beta"])])
    alpha, beta = _book("alpha"), _book("beta")
    aggregator.update(alpha)
    aggregator.update(beta)
    combined = aggregator.combined("BERA/USDT", depth=10)
    mirror = RedisMirror(redis_url, keys, top_n=10)
    mirror.mark_dirty_aggregated("BERA/USDT", combined)
    await mirror.flush()
    await mirror.close()
    stored = await redis_client.hgetall(keys.aggregated_book("BERA/USDT"))
    bids = orjson.loads(stored[b"bids"])
    shares = orjson.loads(stored[b"shares"])
    assert bids[0] == [combined.bids[0].price, combined.bids[0].qty]
    assert bids[0][1] == 2 * alpha.best_bid_size()
    assert shares["bids"][0] == {"alpha": 0.5, "beta": 0.5}
    assert stored[b"state"] == b"in_sync"
    assert sorted(orjson.loads(stored[b"venues"])) == ["alpha", "beta"]


async def test_a_venue_book_marked_dirty_brings_the_combined_books_it_feeds_along(
    redis_client: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    aggregator = Aggregator([
        CombinedBookSpec(symbol="BERA/USDT", venues=["alpha", "beta"]),
        CombinedBookSpec(symbol="BTC/USDT", venues=["alpha"]),
    ])
    alpha, beta = _book("alpha"), _book("beta")
    aggregator.update(alpha)
    aggregator.update(beta)
    merges: list[str] = []

    def combined(symbol: str) -> CombinedBook:
        merges.append(symbol)
        return aggregator.combined(symbol, depth=10)

    mirror = RedisMirror(redis_url, keys, top_n=10)
    mirror.watch_aggregated(aggregator.feeds, combined)
    for i in range(50):  # many updates between flushes: one merge per flush
        alpha.apply_delta([[1.5, float(i + 1)]], [], seq=200 + i, ts=1.7e9)
        mirror.mark_dirty(alpha)
    await mirror.flush()
    assert merges == ["BERA/USDT"]  # only the view alpha's BERA/USDT book feeds
    stored = await redis_client.hgetall(keys.aggregated_book("BERA/USDT"))
    assert orjson.loads(stored[b"bids"])[0][1] == 2 * alpha.best_bid_size()
    assert not await redis_client.exists(keys.aggregated_book("BTC/USDT"))
    await mirror.flush()
    assert merges == ["BERA/USDT"]  # nothing dirty, nothing merged
    await mirror.close()


async def test_redis_down_never_blocks_the_feed_and_the_mirror_catches_up(
    private_redis: RedisServer, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    book = _book()
    mirror = RedisMirror(
        private_redis.url, keys, interval_s=0.02, trade_buffer=100,
        backoff=Backoff(base_s=0.02, cap_s=0.1),
    )
    async with running(mirror):
        mirror.mark_dirty(book)
        await mirror.next_flush()
        await asyncio.to_thread(private_redis.stop)
        # the feed keeps going: every call returns at once, memory stays bounded
        for i in range(150):
            book.apply_delta([[1.999, float(i + 1)]], [], seq=200 + i, ts=1.7e9)
            mirror.mark_dirty(book)
            mirror.add_trade(_trade(i))
        assert mirror.stats.dropped_trades == 50
        assert mirror.pending <= 1 + 100 + 1
        await asyncio.wait_for(mirror.next_failure(), 10)
        assert not mirror.stats.connected
        await asyncio.to_thread(private_redis.start)
        await asyncio.wait_for(mirror.drained(), 10)
        client = aioredis.Redis.from_url(private_redis.url)
        try:
            key = keys.book("alpha", "BERA/USDT")
            assert await client.hget(key, "seq") == b"349"
            entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(  # type: ignore[assignment]
                keys.trades("alpha", "BERA/USDT")
            )
            ids = [int(f[b"id"]) for _, f in entries]
            assert ids == list(range(50, 150))  # the newest 100 survived, in order
        finally:
            await client.aclose()
    assert mirror.stats.connected


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
async def test_slow_redis_does_not_slow_marking_and_latest_state_wins(
    private_redis: RedisServer, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    book = _book()
    mirror = RedisMirror(private_redis.url, keys, interval_s=0.01, backoff=Backoff(base_s=0.01, cap_s=0.05))
    assert private_redis.process is not None
    pid = private_redis.process.pid
    async with running(mirror):
        mirror.mark_dirty(book)
        await mirror.next_flush()
        os.kill(pid, signal.SIGSTOP)  # Redis hangs: the pending flush waits on its socket
        try:
            ticks = 0
            for i in range(300):
                book.apply_delta([[1.999, float(i + 1)]], [], seq=500 + i, ts=1.7e9)
                mirror.mark_dirty(book)
                await asyncio.sleep(0.001)  # the feed's loop keeps turning while a flush hangs
                ticks += 1
            assert ticks == 300
            assert mirror.pending <= 1
        finally:
            os.kill(pid, signal.SIGCONT)
        await asyncio.wait_for(mirror.drained(), 10)
        client = aioredis.Redis.from_url(private_redis.url)
        try:
            key = keys.book("alpha", "BERA/USDT")
            assert await client.hget(key, "seq") == b"799"
        finally:
            await client.aclose()


async def test_cancelling_a_busy_mirror_always_stops_it(redis_url: str, key_prefix: str) -> None:
    """Shutdown must not hang: cancel lands at random points of a mirror flushing flat out."""
    rng = random.Random(5)
    book = _book()
    for i in range(25):
        mirror = RedisMirror(redis_url, RedisKeys(f"{key_prefix}-{i}"), interval_s=0.0, heartbeat_s=0.001)
        mirror.mark_dirty(book)
        task = asyncio.create_task(mirror.run())
        await asyncio.sleep(rng.random() * 0.02)  # a random moment, not a synchronisation
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert done, f"mirror ignored its cancellation (attempt {i})"
        await mirror.close()


async def test_changes_marked_during_a_flush_wake_the_writer_again_and_a_replaced_book_wins(
    redis_client: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    # The writer is woken only by the first change after a flush: a change that lands while a
    # flush is in flight must still be written by the next one, without any further marks.
    keys = RedisKeys(key_prefix)
    key = keys.book("alpha", "BERA/USDT")
    book = _book()
    aggregator = Aggregator([CombinedBookSpec("BERA/USDT", ["alpha"])])
    aggregator.update(book)
    mirror = RedisMirror(redis_url, keys, interval_s=0.01, heartbeat_s=60.0)
    async with running(mirror):
        mirror.mark_dirty(book)
        flushed = mirror.next_flush()
        await asyncio.wait_for(flushed, 5)
        for round_no in range(1, 6):
            book.apply_delta([[1.5, float(round_no)]], [], seq=100 + round_no, ts=1.7e9)
            mirror.mark_dirty(book)
            mirror.mark_dirty_aggregated("BERA/USDT", aggregator.combined("BERA/USDT"))
            await asyncio.wait_for(mirror.drained(), 5)
            assert int(await redis_client.hget(key, "seq") or 0) == 100 + round_no
        # a new live book for the same venue and symbol (a rebuilt feed) replaces the old one
        fresh = _book(mid=3.0)
        fresh.apply_delta([], [], seq=999, ts=1.7e9)
        mirror.mark_dirty(fresh)
        await asyncio.wait_for(mirror.drained(), 5)
        assert int(await redis_client.hget(key, "seq") or 0) == 999
        book.apply_delta([[1.5, 9.0]], [], seq=1000, ts=1.7e9)
        mirror.mark_dirty(book)  # the old object again: registered anew, its latest state written
        await asyncio.wait_for(mirror.drained(), 5)
        assert int(await redis_client.hget(key, "seq") or 0) == 1000
        assert len(mirror._keys_by_book) == 1
