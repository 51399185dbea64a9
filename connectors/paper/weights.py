"""Request weight per API key (or per IP for public calls) over a rolling minute, and the 429.

Binance charges every REST call a weight, reports what a caller has used in the last minute
in ``X-MBX-USED-WEIGHT-1M`` and answers 429 with ``Retry-After`` (seconds) and code -1003
once the limit is exceeded. The weights below follow Binance Spot's published table closely
enough for a rate limiter to be exercised realistically.
"""

from __future__ import annotations

import math
from collections import deque

from strategies.clock import Clock

WINDOW_S = 60.0
DEFAULT_WEIGHT_LIMIT = 6000

# (method, endpoint under /api/v3) -> weight; endpoints whose weight depends on parameters
# are computed in :func:`request_weight`.
_FIXED_WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "ping"): 1,
    ("GET", "time"): 1,
    ("GET", "exchangeInfo"): 20,
    ("GET", "trades"): 25,
    ("GET", "account"): 20,
    ("POST", "order"): 1,
    ("DELETE", "order"): 1,
    ("GET", "order"): 4,
    ("DELETE", "openOrders"): 1,
    ("GET", "allOrders"): 20,
    ("GET", "myTrades"): 20,
    ("POST", "userDataStream"): 2,
    ("PUT", "userDataStream"): 2,
    ("DELETE", "userDataStream"): 2,
}


def depth_weight(limit: int) -> int:
    """Binance's depth weight by ``limit``: 5 up to 100, 25 up to 500, 50 up to 1000, else 250."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def request_weight(method: str, endpoint: str, params: dict[str, str]) -> int:
    """The weight Binance charges for one call (unknown endpoints cost 1)."""
    has_symbol = bool(params.get("symbol") or params.get("symbols"))
    if endpoint == "depth":
        try:
            limit = int(params.get("limit", "100"))
        except ValueError:
            limit = 100
        return depth_weight(limit)
    if endpoint == "openOrders" and method == "GET":
        return 6 if has_symbol else 80
    if endpoint == "ticker/bookTicker":
        return 2 if has_symbol else 4
    if endpoint == "ticker/24hr":
        return 2 if has_symbol else 80
    return _FIXED_WEIGHTS.get((method, endpoint), 1)


class WeightLimiter:
    """Used weight per caller over a rolling minute; says when a caller is over its limit."""

    def __init__(self, limit: int, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._charges: dict[str, deque[tuple[float, int]]] = {}
        self._used: dict[str, int] = {}

    def used(self, caller: str) -> int:
        """Weight ``caller`` spent in the last minute."""
        self._expire(caller, self._clock.monotonic())
        return self._used.get(caller, 0)

    def charge(self, caller: str, weight: int) -> int:
        """Add a call's weight and return the caller's used weight including it.

        The call is charged even when it will be refused: Binance counts rejected requests
        towards the limit too, which is what makes backing off necessary.
        """
        now = self._clock.monotonic()
        self._expire(caller, now)
        self._charges.setdefault(caller, deque()).append((now, weight))
        self._used[caller] = self._used.get(caller, 0) + weight
        return self._used[caller]

    def over_limit(self, caller: str) -> bool:
        return self.used(caller) > self.limit

    def retry_after(self, caller: str) -> int:
        """Whole seconds until enough old charges expire for ``caller`` to be under the limit."""
        now = self._clock.monotonic()
        self._expire(caller, now)
        excess = self._used.get(caller, 0) - self.limit
        for ts, weight in self._charges.get(caller, ()):
            excess -= weight
            if excess <= 0:
                return max(1, math.ceil(ts + WINDOW_S - now))
        return 1

    def _expire(self, caller: str, now: float) -> None:
        charges = self._charges.get(caller)
        if not charges:
            return
        cutoff = now - WINDOW_S
        while charges and charges[0][0] <= cutoff:
            _, weight = charges.popleft()
            self._used[caller] -= weight
