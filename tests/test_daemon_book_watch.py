"""A book that falls silent pulls its venue's quotes within 500 ms of passing ``max_book_age_s``.

The daemon checks book ages every 100 ms on its own timer, not when it happens to publish state
(here publishing is all but off), re-quote (every venue is silent, so nothing re-quotes) or hear
a health change from a feed (the feeds' own stale limit, 5 s, is far off).
"""

from __future__ import annotations

import time
from pathlib import Path

from connectors.paper import PaperExchange
from daemon.app import Daemon
from tests.fixtures.daemon import in_process_daemon, own_open_ids, running, until

MAX_BOOK_AGE_S = 0.3


async def test_silent_books_pull_their_venues_quotes_within_half_a_second(
    tmp_path: Path, paper_exchange: PaperExchange, redis_url: str
) -> None:
    daemon, _ = in_process_daemon(
        Daemon, tmp_path, paper_exchange, redis_url, publish_interval_s=60.0,
        extra=f"risk:\n  max_book_age_s: {MAX_BOOK_AGE_S}\n",
    )
    async with running(daemon):

        async def quoting() -> bool:
            return bool(daemon.instance) and all(own_open_ids(paper_exchange, daemon.instance).values())

        await until(quoting)
        stalled_at = time.monotonic()
        # every venue falls silent (connections stay open): no book update, no fill report is
        # left to trigger a re-check of the quotes; only the daemon's own timer can notice
        for venue in paper_exchange.venues.values():
            venue.faults.stall()
        try:

            async def all_pulled() -> bool:
                risk = daemon.event_path.risk
                unhealthy = risk.state()["unhealthy_books"] if risk is not None else {}
                return all(f"{name}:BERA/USDT" in unhealthy for name in paper_exchange.venues)

            async def all_off() -> bool:
                return not any(own_open_ids(paper_exchange, daemon.instance).values())

            await until(all_pulled, within_s=5.0, interval=0.01)
            decided = time.monotonic() - stalled_at
            await until(all_off, within_s=5.0, interval=0.01)
            cancelled = time.monotonic() - stalled_at
            # the last update came at or before the stall: the books were too old by
            # MAX_BOOK_AGE_S, and their quotes were pulled (targets emptied) within 500 ms of that
            assert decided <= MAX_BOOK_AGE_S + 0.5, decided
            # the venue confirms later when a cancel meets a fill whose report the stall holds
            # back (the order manager waits for it): seen up to ~1.3 s
            assert cancelled <= 3.0, cancelled
        finally:
            for venue in paper_exchange.venues.values():
                venue.faults.unstall()
