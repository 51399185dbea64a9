"""Which feed a venue's config builds, and how it is bounded."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.binance.feed import BinanceFeed
from connectors.execution.credentials import Credentials
from daemon.venues import VenueRuntime, build_feed
from strategies.clock import ManualClock
from strategies.config import VenueConfig


def _feed(vc: VenueConfig) -> BinanceFeed:
    runtime = VenueRuntime("alpha", vc, Credentials("key", "secret"))
    feed = build_feed(runtime, ManualClock(0.0), lambda b: None, lambda t: None, lambda b: None)
    assert isinstance(feed, BinanceFeed)
    return feed


def test_the_native_feed_keeps_at_most_book_depth_levels_a_side() -> None:
    urls = {"rest": "http://127.0.0.1:1/api/v3", "ws": "ws://127.0.0.1:1"}
    default = _feed(VenueConfig(symbols=["BERA/USDT"], urls=urls))  # type: ignore[arg-type]
    assert default.books["BERA/USDT"].max_depth == 5000
    feed = _feed(VenueConfig(symbols=["BERA/USDT"], urls=urls, book_depth=3))  # type: ignore[arg-type]
    book = feed.books["BERA/USDT"]
    book.apply_snapshot([[f"{2 - i / 100:.2f}", "1"] for i in range(10)], [], seq=1, ts=0.0)
    book.apply_delta([["1.50", "1"], ["2.50", "1"]], [], seq=2, ts=0.0)
    assert [p for p, _ in book.bid_levels()] == [2.5, 2.0, 1.99]  # the far end went, the best stayed


def test_a_book_depth_below_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="book_depth"):
        VenueConfig(symbols=["BERA/USDT"], book_depth=0)
