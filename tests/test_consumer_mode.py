"""Consumer mode: a process reads books from Redis, published by another, and sees the same books."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from connectors.backoff import Backoff
from daemon.redis_books import RedisBookReader
from daemon.redis_keys import RedisKeys
from daemon.redis_mirror import RedisMirror
from strategies.book import L2Book
from strategies.types import SyncState
from tests.fixtures.binance_stub import SYMBOLS, Probe, StubBinance, make_feed, random_flow
from tests.fixtures.binance_stub import running as running_feed
from tests.fixtures.binance_stub import stub as stub


def _book(venue: str, symbol: str, mid: float) -> L2Book:
    book = L2Book(venue, symbol)
    book.apply_snapshot(
        [[mid - i * 0.01, float(i)] for i in range(1, 30)],
        [[mid + i * 0.01, float(i)] for i in range(1, 30)],
        seq=10,
        ts=1_700_000_000.0,
    )
    book.health.state = SyncState.IN_SYNC
    book.health.last_update_ts = 1_700_000_000.0
    return book


@contextlib.asynccontextmanager
async def running(*runners: Any) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for r in runners:
            await r.close()


async def test_reader_discovers_books_and_mirrors_contents_and_health(
    redis_url: str, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    alpha = _book("alpha", "BERA/USDT", 2.0)
    beta = _book("beta", "BTC/USDT", 60000.0)
    mirror = RedisMirror(redis_url, keys, interval_s=0.01, heartbeat_s=0.1)
    probe = Probe()
    reader = RedisBookReader(
        redis_url, key_prefix, on_book=probe.on_book, on_health=probe.on_health,
        stale_after_s=0.5, refresh_interval_s=0.1,
    )
    async with running(mirror, reader):
        mirror.mark_dirty(alpha)
        mirror.mark_dirty(beta)
        await probe.until(lambda: len(reader.books) == 2)
        for book in (alpha, beta):
            mine = reader.book(book.venue, book.symbol)
            assert mine is not None
            assert mine.top(50) == book.top(50)
            assert mine.seq == book.seq
            assert mine.health.state is SyncState.IN_SYNC
        # health travels too: the publisher's book goes out of sync
        alpha.health.state = SyncState.RESYNCING
        alpha.health.reason = "gap: expected U=11"
        alpha.health.resync_count = 1
        mirror.mark_dirty(alpha)
        seen = reader.books[("alpha", "BERA/USDT")]
        await probe.until(lambda: seen.health.state is SyncState.RESYNCING)
        assert seen.health.reason == "gap: expected U=11"
        assert seen.health.resync_count == 1


async def test_reader_marks_books_stale_when_the_publisher_goes_silent(
    redis_url: str, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    book = _book("alpha", "BERA/USDT", 2.0)
    mirror = RedisMirror(redis_url, keys, interval_s=0.01, heartbeat_s=0.05)
    probe = Probe()
    reader = RedisBookReader(
        redis_url, key_prefix, books=[("alpha", "BERA/USDT")], on_book=probe.on_book,
        on_health=probe.on_health, stale_after_s=0.4, refresh_interval_s=0.1,
    )
    async with running(reader):
        async with running(mirror):
            mirror.mark_dirty(book)
            await probe.until(lambda: ("BERA/USDT", SyncState.IN_SYNC) in probe.health)
        # publisher gone (its hash still says in_sync, but nobody rewrites it)
        await probe.until(lambda: ("BERA/USDT", SyncState.STALE) in probe.health)
        seen = reader.books[("alpha", "BERA/USDT")]
        assert seen.health.reason == "publisher silent"
        assert not seen.health.usable


CONSUMER = """
import asyncio, sys, time, orjson
from daemon.redis_books import RedisBookReader

def on_book(book):
    bid, ask = book.best_bid(), book.best_ask()
    sys.stdout.write(orjson.dumps({"t": time.time(), "venue": book.venue, "symbol": book.symbol,
        "seq": book.seq, "bid": bid, "ask": ask, "state": book.health.state.value}).decode() + "\\n")
    sys.stdout.flush()

async def main():
    reader = RedisBookReader(sys.argv[1], sys.argv[2], on_book=on_book, refresh_interval_s=0.5)
    task = asyncio.create_task(reader.run())
    await reader.wait_ready()
    print("ready", flush=True)
    await task

asyncio.run(main())
"""


async def test_second_process_sees_the_feeding_processes_top_of_book_within_100ms(
    stub: StubBinance, redis_url: str, key_prefix: str
) -> None:
    keys = RedisKeys(key_prefix)
    mirror = RedisMirror(redis_url, keys, interval_s=0.02, backoff=Backoff(base_s=0.01, cap_s=0.1))
    published: dict[tuple[str, int], tuple[float, float | None, float | None]] = {}
    probe = Probe()

    def on_book(book: L2Book) -> None:
        published[(book.symbol, book.seq)] = (time.time(), book.best_bid(), book.best_ask())
        mirror.mark_dirty(book)
        probe.on_book(book)

    feed = make_feed(stub, probe)
    feed.on_book = on_book
    consumer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CONSUMER, redis_url, key_prefix,
        stdout=asyncio.subprocess.PIPE, cwd=str(Path(__file__).parent.parent),
    )
    assert consumer.stdout is not None
    seen: list[dict[str, Any]] = []
    try:
        assert await asyncio.wait_for(consumer.stdout.readline(), 30) == b"ready\n"
        async with running(mirror), running_feed(feed):
            await probe.until(lambda: all(b.health.usable for b in feed.books.values()))
            finals: dict[str, int] = {}
            for step in range(40):  # a live pace: a diff every 10 ms per symbol
                for symbol in SYMBOLS:
                    await random_flow(stub, symbol, 1, seed=step)
                    finals[symbol] = stub.books[symbol.replace("/", "")].update_id
                await asyncio.sleep(0.01)

            async def consume_until_final() -> None:
                done: set[str] = set()
                while done != set(SYMBOLS):
                    line = await consumer.stdout.readline()  # type: ignore[union-attr]
                    record = orjson.loads(line)
                    seen.append(record)
                    if record["seq"] == finals[record["symbol"]]:
                        done.add(record["symbol"])

            await asyncio.wait_for(consume_until_final(), 10)
            for symbol in SYMBOLS:
                local = feed.books[symbol]
                assert local.seq == finals[symbol]
    finally:
        consumer.terminate()
        await consumer.wait()
    lags = []
    for record in seen:
        key = (record["symbol"], record["seq"])
        assert key in published, key
        t_pub, bid, ask = published[key]
        assert (record["bid"], record["ask"]) == (bid, ask)  # the same top of book for that sequence
        assert record["state"] == "in_sync"
        lags.append(record["t"] - t_pub)
    lags.sort()
    p90 = lags[int(len(lags) * 0.9)]
    print(f"consumer lag over {len(lags)} updates: median {statistics.median(lags) * 1e3:.1f} ms, "
          f"p90 {p90 * 1e3:.1f} ms, max {lags[-1] * 1e3:.1f} ms")
    assert p90 < 0.1
    assert statistics.median(lags) < 0.1
    async with aioredis.Redis.from_url(redis_url) as client:
        assert await client.exists(keys.book("alpha", "BERA/USDT"))
