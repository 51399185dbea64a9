"""Capped exponential backoff with full jitter, for every reconnect and retry loop."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Capped exponential backoff with full jitter (AWS architecture blog's "full jitter").

    The n-th consecutive failure waits ``uniform(0, min(cap, base * 2**n))``. A connection
    that stayed up for ``reset_after_s`` resets the count, so one blip after hours of
    uptime retries fast, while a flapping venue backs off to the cap.
    """

    base_s: float = 0.2
    cap_s: float = 15.0
    reset_after_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    _connected_at: float | None = None

    def connected(self, now: float) -> None:
        """A connection (or request) succeeded at clock time ``now``."""
        self._connected_at = now

    def next_delay(self, now: float) -> float:
        """Seconds to wait before the next attempt after a failure at ``now``."""
        if self._connected_at is not None and now - self._connected_at >= self.reset_after_s:
            self.failures = 0
        self._connected_at = None
        ceiling = min(self.cap_s, self.base_s * (2.0 ** min(self.failures, 30)))
        self.failures += 1
        return self.rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        self.failures = 0
        self._connected_at = None
