"""Request-weight limiter for one venue account.

Binance counts request *weight* per IP/account per minute and answers 429 (then 418 and a
ban) when it is exceeded, with ``Retry-After``. We keep well under the limit with a token
bucket refilled at a safe fraction of the venue's rate, learn from the venue's own
``X-MBX-USED-WEIGHT-1M`` header, and stop sending altogether until ``Retry-After`` has
passed once the venue says we were too fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from strategies.clock import Clock, SystemClock


class Weights:
    """Binance Spot request weights of the endpoints the adapter uses."""

    CREATE_ORDER = 1
    CANCEL_ORDER = 1
    FETCH_ORDER = 4
    OPEN_ORDERS_SYMBOL = 6
    OPEN_ORDERS_ALL = 80
    MY_TRADES = 20
    EXCHANGE_INFO = 20
    ACCOUNT = 20


@dataclass(slots=True)
class LimiterStats:
    acquired_weight: int = 0
    waits: int = 0  # acquisitions that had to wait for tokens or a back-off
    back_offs: int = 0  # 429/418 answers (or near-limit headers) that paused us


class WeightLimiter:
    """Token bucket over request weight plus a venue-imposed pause.

    ``weight_per_minute`` is the venue's limit; ``safety`` is the share of it we allow
    ourselves (others may share the IP); ``burst_s`` is how many seconds of refill may be
    spent at once.
    """

    def __init__(
        self,
        weight_per_minute: int = 6000,
        *,
        safety: float = 0.8,
        burst_s: float = 5.0,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if weight_per_minute <= 0 or not 0 < safety <= 1:
            raise ValueError("weight_per_minute must be positive and safety in (0, 1]")
        self.limit = weight_per_minute
        self._safety = safety
        self._rate = weight_per_minute * safety / 60.0  # weight per second
        self._capacity = max(self._rate * burst_s, 1.0)
        self._tokens = self._capacity
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._last = self._clock.monotonic()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.stats = LimiterStats()

    @property
    def paused_for(self) -> float:
        """Seconds left of a venue-imposed pause (0 when none)."""
        return max(self._paused_until - self._clock.monotonic(), 0.0)

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now

    def wait_needed(self, weight: int) -> float:
        """Seconds until ``weight`` may be spent (0 if now)."""
        self._refill()
        pause = self.paused_for
        need = min(float(weight), self._capacity)  # an oversize request waits for a full bucket
        short = need - self._tokens
        wait = max(pause, short / self._rate if short > 1e-9 else 0.0)
        # Never ask for a sleep too short to move a clock: float dust would spin forever.
        return max(wait, 1e-3) if wait > 0 else 0.0

    async def acquire(self, weight: int = 1) -> None:
        """Wait until ``weight`` may be spent, then spend it. Callers are served in order."""
        async with self._lock:
            waited = False
            while (delay := self.wait_needed(weight)) > 0:
                waited = True
                await self._sleep(delay)
            self._tokens -= min(float(weight), self._capacity)
            self.stats.acquired_weight += weight
            if waited:
                self.stats.waits += 1

    def back_off(self, seconds: float) -> None:
        """The venue said slow down: send nothing for ``seconds`` and start from an empty bucket."""
        self.stats.back_offs += 1
        self._paused_until = max(self._paused_until, self._clock.monotonic() + max(seconds, 0.0))
        self._refill()
        self._tokens = min(self._tokens, 0.0)

    def observe_used_weight(self, used: int) -> None:
        """Align with the venue's own count (``X-MBX-USED-WEIGHT-1M``): never believe we have
        more room than the venue says is left of our share."""
        room = self.limit * self._safety - used
        self._refill()
        if room < self._tokens:
            self._tokens = max(room, -self._capacity)
