"""The native Binance feed over real sockets against a small Binance-like stub on 127.0.0.1.

The stub (aiohttp) serves ``GET /api/v3/depth`` and the combined stream ``/stream?streams=``
with Binance's diff-depth sequencing, and lets a test push depth diffs, skip update ids,
stay silent, fail snapshots and drop connections. Tests against the full paper venue are in
``test_feed_faults.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

from connectors.backoff import Backoff
from connectors.binance.feed import BinanceFeed, BinanceFeedConfig
from connectors.feed import wire_symbol
from strategies.types import Side, SyncState, Trade
from tests.fixtures.binance_stub import (
    SYMBOLS,
    Probe,
    StubBinance,
    assert_equal_to_venue,
    in_sync,
    make_feed,
    random_flow,
    running,
    stub,
)

__all__ = ["stub"]  # the pytest fixture, imported for this module's tests

# ---------------------------------------------------------------------------- tests


async def test_many_symbols_sync_on_one_connection_and_follow_the_diffs(stub: StubBinance) -> None:
    probe = Probe()
    feed = make_feed(stub, probe)
    assert feed.stream_url.endswith(
        "/stream?streams=berausdt@depth@100ms/berausdt@trade/btcusdt@depth@100ms/btcusdt@trade"
    )
    async with running(feed):
        await probe.until(in_sync(feed))
        await random_flow(stub, "BERA/USDT", 200, seed=1)
        await random_flow(stub, "BTC/USDT", 200, seed=2)
        final = {s: stub.books[wire_symbol(s)].update_id for s in SYMBOLS}
        await probe.until(lambda: all(feed.books[s].seq == final[s] for s in SYMBOLS))
        assert_equal_to_venue(feed, stub)
        assert stub.connections == 1
        assert stub.snapshot_requests == 2
        assert feed.stats.gaps == 0
        # on_book fired for the snapshot and for every diff, in sequence order per symbol
        seqs = [seq for symbol, seq in probe.books if symbol == "BERA/USDT"]
        assert len(seqs) == 201 and seqs == sorted(seqs)


async def test_events_arriving_before_the_snapshot_are_bridged(stub: StubBinance) -> None:
    probe = Probe()
    stub.snapshot_failures = 2  # the snapshot comes late: diffs pile up in the buffer first
    feed = make_feed(stub, probe)
    async with running(feed):
        await stub.connected.wait()
        await random_flow(stub, "BERA/USDT", 30, seed=5)
        await probe.until(in_sync(feed))
        assert_equal_to_venue(feed, stub)
        assert feed.stats.snapshot_failures == 2


async def test_sequence_gap_marks_resyncing_then_resyncs_to_the_venue_book(stub: StubBinance) -> None:
    probe = Probe()
    feed = make_feed(stub, probe)
    async with running(feed):
        await probe.until(in_sync(feed))
        book = feed.books["BERA/USDT"]
        stub.snapshot_failures = 1  # hold the resync for one retry so the out-of-sync state is observable
        await stub.push_depth("BERA/USDT", [["1.9990", "5"]], skip=3)  # ids lost on the way
        await probe.until(lambda: ("BERA/USDT", SyncState.RESYNCING) in probe.health)
        assert not book.health.usable
        assert book.health.resync_count == 1
        assert "gap" in book.health.reason
        await probe.until(in_sync(feed, "BERA/USDT"))
        await random_flow(stub, "BERA/USDT", 20, seed=9)
        final = stub.books["BERAUSDT"].update_id
        await probe.until(lambda: book.seq == final)
        assert_equal_to_venue(feed, stub)
        assert feed.stats.gaps == 1
        assert feed.books["BTC/USDT"].health.resync_count == 0  # the other symbol was untouched


async def test_dropped_connection_reconnects_and_resyncs_every_symbol(stub: StubBinance) -> None:
    probe = Probe()
    feed = make_feed(stub, probe)
    async with running(feed):
        await probe.until(in_sync(feed))
        await random_flow(stub, "BERA/USDT", 10, seed=3)
        await stub.drop_connections()
        await probe.until(lambda: all(
            (s, SyncState.DISCONNECTED) in probe.health for s in SYMBOLS))
        # the venue moves on while we are away
        await random_flow(stub, "BTC/USDT", 10, seed=4)
        await probe.until(lambda: stub.connections == 2 and in_sync(feed)())
        await random_flow(stub, "BERA/USDT", 10, seed=6)
        final = stub.books["BERAUSDT"].update_id
        await probe.until(lambda: feed.books["BERA/USDT"].seq == final)
        assert_equal_to_venue(feed, stub)
        assert all(feed.books[s].health.resync_count == 1 for s in SYMBOLS)
        assert feed.stats.connects == 2


async def test_silent_stream_marks_stale_and_flowing_data_restores_in_sync(stub: StubBinance) -> None:
    probe = Probe()
    feed = make_feed(stub, probe, stale_after_s=0.3)
    async with running(feed):
        await probe.until(in_sync(feed))
        await probe.until(lambda: ("BERA/USDT", SyncState.STALE) in probe.health, within=5)
        book = feed.books["BERA/USDT"]
        assert book.health.state is SyncState.STALE
        assert not book.health.usable
        await stub.push_depth("BERA/USDT", [["1.9995", "3"]])
        await probe.until(lambda: book.health.state is SyncState.IN_SYNC)
        assert book.health.resync_count == 0  # stale is not a resync: the sequence held
        assert book.bid_qty(1.9995) == 3.0


async def test_silent_socket_is_reconnected_when_configured(stub: StubBinance) -> None:
    probe = Probe()
    config = BinanceFeedConfig(reconnect_silent_s=0.3, watchdog_interval_s=0.05)
    feed = make_feed(stub, probe, config=config, stale_after_s=10.0)
    async with running(feed):
        await probe.until(in_sync(feed))
        await probe.until(lambda: stub.connections >= 2 and in_sync(feed)(), within=5)
        assert feed.stats.disconnects >= 1


async def test_trades_reach_on_trade_with_the_taker_side(stub: StubBinance) -> None:
    probe = Probe()
    feed = make_feed(stub, probe)
    async with running(feed):
        await probe.until(in_sync(feed))
        await stub.push_trade("BTC/USDT", "60001.5", "0.25", buyer_is_maker=True, trade_id=42)
        await stub.push_trade("BERA/USDT", "2.0001", "10", buyer_is_maker=False, trade_id=43)
        await probe.until(lambda: len(probe.trades) == 2)
    first, second = probe.trades
    assert first == Trade("alpha", "BTC/USDT", 60001.5, 0.25, Side.SELL, 1_700_000_000.123, 42)
    assert second.taker_side is Side.BUY and second.symbol == "BERA/USDT"


class _CountingBackoff(Backoff):
    """Backoff that signals after ``n`` failed attempts (so the test awaits an event, not time)."""

    def __init__(self, n: int) -> None:
        super().__init__(base_s=0.01, cap_s=0.02)
        self.reached = asyncio.Event()
        self.n = n

    def next_delay(self, now: float) -> float:
        delay = super().next_delay(now)
        if self.failures >= self.n:
            self.reached.set()
        return delay


async def test_unreachable_venue_keeps_retrying_and_books_say_disconnected() -> None:
    probe = Probe()
    backoff = _CountingBackoff(3)
    feed = BinanceFeed(
        "alpha", ["BERA/USDT"], "ws://127.0.0.1:9", "http://127.0.0.1:9/api/v3",
        on_health=probe.on_health, backoff=backoff,
    )
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(backoff.reached.wait(), 5)
        reason = feed.books["BERA/USDT"].health.reason
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await feed.close()
    book = feed.books["BERA/USDT"]
    assert book.health.state is SyncState.DISCONNECTED
    assert "connect failed" in reason
    assert feed.stats.connects == 0
    assert probe.health == []  # never connected: no transition to report


def test_backoff_is_full_jitter_capped_and_resets_after_a_healthy_connection() -> None:
    backoff = Backoff(base_s=0.5, cap_s=4.0, reset_after_s=30.0, rng=random.Random(1))
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for ceiling in ceilings:
        delay = backoff.next_delay(now=0.0)
        assert 0.0 <= delay <= ceiling
    assert backoff.failures == len(ceilings)
    backoff.connected(now=100.0)
    backoff.next_delay(now=110.0)  # dropped after 10 s: not healthy long enough
    assert backoff.failures == len(ceilings) + 1
    backoff.connected(now=200.0)
    delay = backoff.next_delay(now=240.0)  # up for 40 s: start over
    assert backoff.failures == 1 and delay <= 0.5
    samples = [Backoff(base_s=1.0, cap_s=1.0, rng=random.Random(i)).next_delay(0.0) for i in range(200)]
    assert min(samples) < 0.1 and max(samples) > 0.9  # jitter spreads over the whole range


async def test_close_ends_run_and_leaves_books_disconnected(stub: StubBinance) -> None:
    probe = Probe()
    feed = make_feed(stub, probe)
    task = asyncio.create_task(feed.run())
    await probe.until(in_sync(feed))
    await feed.close()
    await asyncio.wait_for(task, 5)  # returns by itself: no cancellation needed
    assert all(b.health.state is SyncState.DISCONNECTED for b in feed.books.values())
    assert stub.connections == 1


async def test_aiohttp_transport_syncs_follows_gaps_and_reconnects_the_same_way(stub: StubBinance) -> None:
    probe = Probe()
    feed = make_feed(stub, probe, config=BinanceFeedConfig(transport="aiohttp"))
    async with running(feed):
        await probe.until(in_sync(feed))
        await random_flow(stub, "BERA/USDT", 50, seed=21)
        await stub.push_depth("BTC/USDT", [["59990.0", "1"]], skip=2)
        await probe.until(lambda: ("BTC/USDT", SyncState.RESYNCING) in probe.health)
        await probe.until(in_sync(feed))
        await stub.drop_connections()
        await probe.until(lambda: stub.connections == 2 and in_sync(feed)())
        await random_flow(stub, "BTC/USDT", 20, seed=22)
        final = stub.books["BTCUSDT"].update_id
        await probe.until(lambda: feed.books["BTC/USDT"].seq == final)
        assert_equal_to_venue(feed, stub)
        assert feed.stats.gaps == 1
        assert feed.books["BTC/USDT"].health.resync_count == 2  # the gap, then the reconnect


async def test_a_frame_with_fields_after_the_levels_applies(stub: StubBinance) -> None:
    feed = make_feed(stub, Probe())
    sync = feed._syncs["BERA/USDT"]
    sync.on_snapshot(10, [["1.0", "1"]], [["1.1", "1"]], 0.0)
    frame = (b'{"stream":"berausdt@depth@100ms","data":{"e":"depthUpdate","s":"BERAUSDT","U":11,"u":11,'
             b'"b":[["1.0","5"]],"a":[],"x":"extra"}}')
    feed._handle_frame(frame)
    assert feed.books["BERA/USDT"].bid_qty(1.0) == 5.0
    assert feed.stats.bad_frames == 0
