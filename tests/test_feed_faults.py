"""The native Binance feed against the paper venue and its fault knobs.

At each checkpoint the simulated market is paused, the feed catches up with the last update
id the venue's engine issued, and the local book must equal the engine's own book level by
level. While a book is not in sync its health says so, and no book update is handed to the
strategy (``on_book``) unless the book is in sync.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.backoff import Backoff
from connectors.binance.feed import BinanceFeed, BinanceFeedConfig
from connectors.paper import PaperExchange, PaperVenueHandle
from strategies.book import L2Book
from strategies.types import SyncState
from tests.fixtures.binance_stub import Probe
from tests.fixtures.binance_stub import running as running_feed

SYMBOLS = ["BERA/USDT", "BTC/USDT", "BERA/BTC"]


class StrictProbe(Probe):
    """A probe that also remembers the health of every book handed to ``on_book``."""

    def __init__(self) -> None:
        super().__init__()
        self.states_on_book: set[SyncState] = set()

    def on_book(self, book: L2Book) -> None:
        self.states_on_book.add(book.health.state)
        super().on_book(book)


@pytest.fixture
async def feed_on_paper(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle
) -> AsyncIterator[tuple[BinanceFeed, StrictProbe]]:
    probe = StrictProbe()
    feed = BinanceFeed(
        "alpha", SYMBOLS, paper_venue.ws_url, paper_venue.rest_url,
        on_book=probe.on_book, on_health=probe.on_health, on_trade=probe.on_trade,
        stale_after_s=0.4, backoff=Backoff(base_s=0.02, cap_s=0.2),
    )
    async with running_feed(feed):
        await probe.until(lambda: all(b.health.usable for b in feed.books.values()), within=10)
        probe.health.clear()  # the start-up transitions are not what the tests look for
        yield feed, probe
    assert probe.states_on_book == {SyncState.IN_SYNC}


async def checkpoint(px: PaperExchange, venue: PaperVenueHandle, feed: BinanceFeed, probe: Probe) -> None:
    """Pause the market, let the feed catch up, and compare every level with the venue's book."""
    px.pause_market()
    try:
        for symbol in SYMBOLS:
            book = feed.books[symbol]
            _, _, last_id = venue.engine.depth(symbol, 1)
            await probe.until(
                lambda b=book, uid=last_id: b.seq == uid and b.health.state is SyncState.IN_SYNC,  # type: ignore[misc]
                within=10,
            )
            bids, asks, _ = venue.engine.depth(symbol, 10_000)
            assert book.top(10_000) == (
                [(float(p), float(q)) for p, q in bids],
                [(float(p), float(q)) for p, q in asks],
            ), symbol
            assert bids and asks
    finally:
        px.resume_market()


async def flow(px: PaperExchange, probe: Probe, updates: int) -> None:
    """Let the simulated market run until the feed has applied ``updates`` more book changes."""
    target = len(probe.books) + updates
    await probe.until(lambda: len(probe.books) >= target, within=15)


async def test_local_books_equal_the_venue_books_at_checkpoints(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle,
    feed_on_paper: tuple[BinanceFeed, StrictProbe],
) -> None:
    feed, probe = feed_on_paper
    for _ in range(3):
        await flow(paper_exchange, probe, 30)
        await checkpoint(paper_exchange, paper_venue, feed, probe)
    assert feed.stats.gaps == 0
    assert all(b.health.resync_count == 0 for b in feed.books.values())
    assert probe.trades, "the trade stream reaches on_trade"


async def test_dropped_connections_resync_to_the_venue_book(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle,
    feed_on_paper: tuple[BinanceFeed, StrictProbe],
) -> None:
    feed, probe = feed_on_paper
    for round_no in range(1, 3):
        await paper_venue.faults.drop_connections()
        await probe.until(lambda: all(
            (s, SyncState.DISCONNECTED) in probe.health for s in SYMBOLS), within=10)
        await probe.until(lambda: all(b.health.usable for b in feed.books.values()), within=10)
        await flow(paper_exchange, probe, 10)
        await checkpoint(paper_exchange, paper_venue, feed, probe)
        assert all(b.health.resync_count == round_no for b in feed.books.values())
        probe.health.clear()
    assert feed.stats.connects == 3


async def test_injected_gap_is_detected_and_resynced_while_health_says_resyncing(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle,
    feed_on_paper: tuple[BinanceFeed, StrictProbe],
) -> None:
    feed, probe = feed_on_paper
    book = feed.books["BERA/USDT"]
    # live on the stream first: a gap in ids an initial snapshot already covers is no gap at all
    await flow(paper_exchange, probe, 10)
    paper_venue.faults.gap_next_depth(3, symbol="BERA/USDT")
    await probe.until(lambda: ("BERA/USDT", SyncState.RESYNCING) in probe.health, within=10)
    assert book.health.resync_count == 1
    assert "gap" in book.health.reason
    await probe.until(lambda: book.health.usable, within=10)
    await flow(paper_exchange, probe, 10)
    await checkpoint(paper_exchange, paper_venue, feed, probe)
    assert feed.stats.gaps >= 1
    assert feed.books["BTC/USDT"].health.resync_count == 0


async def test_gap_on_every_symbol_while_rest_snapshots_fail_recovers_when_rest_does(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle,
    feed_on_paper: tuple[BinanceFeed, StrictProbe],
) -> None:
    feed, probe = feed_on_paper
    paper_venue.faults.rest_fail_mode = "5xx"
    paper_venue.faults.rest_fail_rate = 1.0
    await flow(paper_exchange, probe, 10)
    for symbol in SYMBOLS:
        paper_venue.faults.gap_next_depth(2, symbol=symbol)
    await probe.until(lambda: all((s, SyncState.RESYNCING) in probe.health for s in SYMBOLS), within=10)
    failures = feed.stats.snapshot_failures
    await probe.until(lambda: feed.stats.snapshot_failures >= failures + 1 and not any(
        b.health.usable for b in feed.books.values()), within=10)
    assert all(not b.health.usable for b in feed.books.values())  # never a wrong book as in sync
    paper_venue.faults.rest_fail_rate = 0.0
    await probe.until(lambda: all(b.health.usable for b in feed.books.values()), within=15)
    await checkpoint(paper_exchange, paper_venue, feed, probe)


async def test_stalled_stream_marks_stale_then_returns_in_sync_when_data_flows(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle,
    feed_on_paper: tuple[BinanceFeed, StrictProbe],
) -> None:
    feed, probe = feed_on_paper
    paper_venue.faults.stall(None)
    try:
        await probe.until(lambda: all((s, SyncState.STALE) in probe.health for s in SYMBOLS), within=10)
        assert all(b.health.state is SyncState.STALE for b in feed.books.values())
        assert all(not b.health.usable for b in feed.books.values())
    finally:
        paper_venue.faults.unstall()
    await probe.until(lambda: all(b.health.usable for b in feed.books.values()), within=10)
    await checkpoint(paper_exchange, paper_venue, feed, probe)
    # the held data arrived in order: staleness is not a resync
    assert all(b.health.resync_count == 0 for b in feed.books.values())
    assert feed.stats.gaps == 0


async def test_forced_429_on_snapshots_is_waited_out(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle,
    feed_on_paper: tuple[BinanceFeed, StrictProbe],
) -> None:
    feed, probe = feed_on_paper
    await flow(paper_exchange, probe, 10)
    paper_venue.faults.force_429(0.5)
    paper_venue.faults.gap_next_depth(1, symbol="BTC/USDT")
    book = feed.books["BTC/USDT"]
    await probe.until(lambda: ("BTC/USDT", SyncState.RESYNCING) in probe.health, within=10)
    await probe.until(lambda: book.health.usable, within=15)
    assert feed.stats.snapshot_failures >= 1
    await checkpoint(paper_exchange, paper_venue, feed, probe)


async def test_aiohttp_transport_survives_drops_and_gaps_with_books_equal_to_the_venue(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle
) -> None:
    probe = StrictProbe()
    feed = BinanceFeed(
        "alpha", SYMBOLS, paper_venue.ws_url, paper_venue.rest_url,
        on_book=probe.on_book, on_health=probe.on_health, stale_after_s=2.0,
        backoff=Backoff(base_s=0.02, cap_s=0.2), config=BinanceFeedConfig(transport="aiohttp"),
    )
    async with running_feed(feed):
        await probe.until(lambda: all(b.health.usable for b in feed.books.values()), within=10)
        await flow(paper_exchange, probe, 10)
        await checkpoint(paper_exchange, paper_venue, feed, probe)
        paper_venue.faults.gap_next_depth(2, symbol="BERA/USDT")
        await probe.until(lambda: feed.stats.gaps == 1, within=10)
        await paper_venue.faults.drop_connections()
        await probe.until(lambda: feed.stats.connects == 2, within=10)
        await probe.until(lambda: all(b.health.usable for b in feed.books.values()), within=10)
        await flow(paper_exchange, probe, 10)
        await checkpoint(paper_exchange, paper_venue, feed, probe)
    assert probe.states_on_book == {SyncState.IN_SYNC}
