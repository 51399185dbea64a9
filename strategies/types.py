"""Value types shared by every layer: sides, market rules, trades, fills, quote targets, feed health.

These are the only shapes that cross module boundaries inside the core. Venue I/O lives in
``connectors/``; this module is pure.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

# A float within this many ulps of a grid point is treated as on it: 0.1234 + 0.0001 is
# 0.12350000000000001 and must not round a bid to the tick below. A few ulps absorb the error
# of the arithmetic that produced the float and nothing a caller could have meant.
_GRID_SNAP_ULPS = 4


class Side(enum.StrEnum):
    """Order side. The value is what ccxt and the YAML use."""

    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        """+1 for a buy (inventory grows), -1 for a sell."""
        return 1 if self is Side.BUY else -1


class SyncState(enum.StrEnum):
    """Health of one local book against its venue."""

    IN_SYNC = "in_sync"
    RESYNCING = "resyncing"  # waiting for or bridging a snapshot; contents not trusted
    STALE = "stale"  # in sequence but silent beyond the configured limit
    DISCONNECTED = "disconnected"


@dataclass(slots=True)
class BookHealth:
    """First-class health of a book; downstream code reads it before trusting the book."""

    state: SyncState = SyncState.DISCONNECTED
    last_update_ts: float = 0.0  # clock time of the last applied update (seconds)
    resync_count: int = 0
    reason: str = ""  # why the book is not in sync, for logs and status

    @property
    def usable(self) -> bool:
        return self.state is SyncState.IN_SYNC

    def age(self, now: float) -> float:
        return now - self.last_update_ts if self.last_update_ts else math.inf


@dataclass(frozen=True, slots=True)
class MarketRules:
    """A venue market's trading rules, from ``load_markets`` or exchangeInfo filters.

    Rounding is in the safe direction: a bid never rounds up, an ask never rounds down, a
    size never rounds up.
    """

    symbol: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    max_qty: Decimal | None = None

    def round_price(self, price: float | Decimal, side: Side) -> Decimal:
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        return _to_grid(price, self.tick, rounding)

    def round_size(self, size: float | Decimal) -> Decimal:
        return _to_grid(size, self.step, ROUND_FLOOR)

    def violation(self, price: Decimal, size: Decimal) -> str | None:
        """The first limit this order breaks, or None if it may be sent."""
        if price <= 0:
            return f"price {price} not positive"
        if price % self.tick != 0:
            return f"price {price} not on tick {self.tick}"
        if size % self.step != 0:
            return f"size {size} not on step {self.step}"
        if size <= 0 or size < self.min_qty:
            return f"size {size} below min qty {self.min_qty}"
        if self.max_qty is not None and size > self.max_qty:
            return f"size {size} above max qty {self.max_qty}"
        if price * size < self.min_notional:
            return f"notional {price * size} below min notional {self.min_notional}"
        return None


def _to_grid(value: float | Decimal, grid: Decimal, rounding: str) -> Decimal:
    if isinstance(value, float):
        units = Decimal(repr(value)) / grid
        nearest = units.to_integral_value()
        if abs(units - nearest) * grid <= Decimal(math.ulp(value) * _GRID_SNAP_ULPS):
            return (nearest * grid).quantize(grid)
    else:
        units = value / grid
    units = units.to_integral_value(rounding=rounding)
    return (units * grid).quantize(grid)


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade printed by a venue (hot path: floats)."""

    venue: str
    symbol: str
    price: float
    qty: float
    taker_side: Side  # BUY when the buyer took liquidity
    ts: float  # venue time, seconds
    trade_id: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders (boundary: exact decimals)."""

    venue: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    trade_id: str  # venue trade id: with venue and symbol, the identity of the fill
    client_order_id: str
    line_id: str
    ts: float
    is_maker: bool = True


@dataclass(frozen=True, slots=True)
class QuoteTarget:
    """One order the strategy wants resting on a venue.

    ``slot`` identifies the place in the ladder; at most one live order per slot.
    Price and size are already on the market's tick and step (``MarketRules.round_*``).
    """

    venue: str
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    line_id: str
    level: int = 0
    refresh_tolerance_bps: float = 0.0  # keep a resting order whose price is this close
    size_tolerance: float = 0.0  # keep it if its remaining size is within this fraction
    min_age_s: float = 0.0  # never replace an order younger than this (queue place)
    max_age_s: float | None = None  # refresh an order older than this (line timeout)

    @property
    def slot(self) -> tuple[str, str, str, Side, int]:
        return (self.venue, self.symbol, self.line_id, self.side, self.level)


@dataclass(slots=True)
class TargetSet:
    """Everything the strategy wants on one venue at one moment; replaces the previous set."""

    venue: str
    targets: list[QuoteTarget] = field(default_factory=list)
    created_ts: float = 0.0
