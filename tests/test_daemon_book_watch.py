"""A book that falls silent pulls its venue's quotes within 500 ms of passing ``max_book_age_s``.

The daemon checks book ages every 100 ms on its own timer, not when it happens to publish state
(here publishing is all but off) and not only when the feed reports a health change (the feed's
own stale limit, 5 s, is far off).
"""

from __future__ import annotations

import time
from pathlib import Path

from connectors.paper import PaperExchange
from daemon.app import Daemon
from tests.fixtures.daemon import in_process_daemon, own_open_ids, running, until

MAX_BOOK_AGE_S = 0.3


async def test_a_silent_book_pulls_its_venues_quotes_within_half_a_second(
    tmp_path: Path, paper_exchange: PaperExchange, redis_url: str
) -> None:
    daemon, _ = in_process_daemon(
        Daemon, tmp_path, paper_exchange, redis_url, publish_interval_s=60.0,
        extra=f"risk:\n  max_book_age_s: {MAX_BOOK_AGE_S}\n",
    )
    alpha = paper_exchange.venues["alpha"]
    async with running(daemon):

        async def quoting() -> bool:
            return bool(daemon.instance) and all(own_open_ids(paper_exchange, daemon.instance).values())

        await until(quoting)
        stalled_at = time.monotonic()
        alpha.faults.stall()  # connections stay open, nothing more arrives on them
        try:

            async def alpha_pulled() -> bool:
                return daemon.risk is not None and any(
                    book.startswith("alpha:") for book in daemon.risk.state()["unhealthy_books"]
                )

            async def alpha_off() -> bool:
                return not own_open_ids(paper_exchange, daemon.instance)["alpha"]

            await until(alpha_pulled, within_s=5.0, interval=0.01)
            decided = time.monotonic() - stalled_at
            await until(alpha_off, within_s=5.0, interval=0.01)
            cancelled = time.monotonic() - stalled_at
            print(f"DECIDED {decided:.3f} CANCELLED {cancelled:.3f}")
            # the last update came at or before the stall: the book was too old by MAX_BOOK_AGE_S
            assert decided <= MAX_BOOK_AGE_S + 0.5, decided
            assert own_open_ids(paper_exchange, daemon.instance)["beta"]  # its books are fine
        finally:
            alpha.faults.unstall()
