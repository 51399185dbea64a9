"""The ccxt pro fallback feed: the unmodified ccxt ``binance`` client against the paper venue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.ccxt_feed import CcxtProFeed
from connectors.paper import PaperExchange, PaperVenueHandle, ccxt_config
from strategies.types import SyncState
from tests.fixtures.binance_stub import Probe
from tests.fixtures.binance_stub import running as running_feed
from tests.test_feed_faults import SYMBOLS, StrictProbe, checkpoint, flow


@pytest.fixture
async def ccxt_feed(paper_venue: PaperVenueHandle) -> AsyncIterator[tuple[CcxtProFeed, StrictProbe]]:
    probe = StrictProbe()
    feed = CcxtProFeed(
        "binance", ccxt_config(paper_venue), "alpha", SYMBOLS,
        on_book=probe.on_book, on_health=probe.on_health, on_trade=probe.on_trade, stale_after_s=2.0,
    )
    async with running_feed(feed):  # type: ignore[arg-type]  # same run/close shape as BinanceFeed
        await probe.until(lambda: all(b.health.usable for b in feed.books.values()), within=15)
        probe.health.clear()
        yield feed, probe
    assert probe.states_on_book == {SyncState.IN_SYNC}


def test_unknown_exchange_id_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="no exchange"):
        CcxtProFeed("no-such-venue", {}, "x", ["BERA/USDT"])


async def test_ccxt_books_equal_the_venue_books_at_checkpoints_and_trades_flow(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle,
    ccxt_feed: tuple[CcxtProFeed, StrictProbe],
) -> None:
    feed, probe = ccxt_feed
    for _ in range(2):
        await flow(paper_exchange, probe, 20)
        await checkpoint(paper_exchange, paper_venue, feed, probe)  # type: ignore[arg-type]
    await probe.until(lambda: len(probe.trades) > 0, within=10)
    trade = probe.trades[-1]
    assert trade.venue == "alpha" and trade.symbol in SYMBOLS and trade.price > 0 and trade.qty > 0


async def test_dropped_connection_marks_disconnected_then_ccxt_resyncs(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle,
    ccxt_feed: tuple[CcxtProFeed, StrictProbe],
) -> None:
    feed, probe = ccxt_feed
    await paper_venue.faults.drop_connections()
    await probe.until(lambda: any(state is SyncState.DISCONNECTED for _, state in probe.health), within=10)
    await probe.until(lambda: all(b.health.usable for b in feed.books.values()), within=15)
    assert any(b.health.resync_count >= 1 for b in feed.books.values())
    await flow(paper_exchange, probe, 5)
    await checkpoint(paper_exchange, paper_venue, feed, probe)  # type: ignore[arg-type]


async def test_gap_makes_ccxt_raise_and_the_book_resyncs(
    paper_exchange: PaperExchange, paper_venue: PaperVenueHandle,
    ccxt_feed: tuple[CcxtProFeed, StrictProbe],
) -> None:
    feed, probe = ccxt_feed
    await flow(paper_exchange, probe, 10)
    paper_venue.faults.gap_next_depth(3, symbol="BERA/USDT")
    book = feed.books["BERA/USDT"]
    await probe.until(lambda: ("BERA/USDT", SyncState.RESYNCING) in probe.health, within=10)
    assert book.health.resync_count == 1
    await probe.until(lambda: book.health.usable, within=15)
    await flow(paper_exchange, probe, 5)
    await checkpoint(paper_exchange, paper_venue, feed, probe)  # type: ignore[arg-type]


async def test_silent_venue_marks_ccxt_books_stale(
    paper_venue: PaperVenueHandle, ccxt_feed: tuple[CcxtProFeed, Probe],
) -> None:
    feed, probe = ccxt_feed
    paper_venue.faults.stall(None)
    try:
        await probe.until(lambda: ("BERA/USDT", SyncState.STALE) in probe.health, within=10)
        assert not feed.books["BERA/USDT"].health.usable
    finally:
        paper_venue.faults.unstall()
    await probe.until(lambda: feed.books["BERA/USDT"].health.usable, within=10)
