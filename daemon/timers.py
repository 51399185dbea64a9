"""The event path's timed inputs; everything else reaches it as an event.

* :class:`StrategyTimer`: the strategy's own wake-ups (passive size redraws at line timeouts, a
  TOB side whose hourly budget frees up) at its ``next_wakeup()``, planned again whenever a
  dispatch may have moved it;
* :func:`watch_books`: books that went silent without a health event (``risk.max_book_age_s``)
  pull their quotes within one period of crossing the limit.
"""

from __future__ import annotations

import asyncio

from daemon.event_path import EventPath
from strategies.clock import Clock

BOOK_POLL_INTERVAL_S = 0.1  # a silent book is caught within max_book_age_s + this


class StrategyTimer:
    """Runs ``EventPath.on_timer`` at the strategy's ``next_wakeup()``."""

    def __init__(self, event_path: EventPath, clock: Clock) -> None:
        self._event_path = event_path
        self._clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Plan again: a dispatch may have moved the strategy's next wake-up."""
        self._wake.set()

    async def run(self) -> None:
        """The supervised task: wait for the wake-up (or a reason to plan again), then fire."""
        path = self._event_path
        while True:
            wake = path.next_wakeup()
            self._wake.clear()
            delay = None if wake is None else max(0.0, wake - self._clock.time())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
                continue  # something changed: plan again
            except TimeoutError:
                pass
            path.on_timer()


async def watch_books(event_path: EventPath) -> None:
    """The supervised task: ``EventPath.poll_books`` every ``BOOK_POLL_INTERVAL_S``."""
    while True:
        await asyncio.sleep(BOOK_POLL_INTERVAL_S)
        event_path.poll_books()
