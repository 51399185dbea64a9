"""Every Redis key stackmm writes, in one place: ``stackmm:<instance>:...``.

The README's key layout is generated from the same names; change them here only.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "stackmm"
INSTANCES = f"{ROOT}:instances"  # set of instance names that ever started


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Key names for one instance."""

    instance: str

    @property
    def prefix(self) -> str:
        return f"{ROOT}:{self.instance}"

    # market data (written by the mirror, read by consumers and `stackmm status`)
    def book(self, venue: str, symbol: str) -> str:
        """Hash: bids, asks (JSON [[price, qty], ...] best first), seq, version, ts, state, resync_count.

        Also: reason, last_update_ts, published_ts, kind, venue, symbol.
        """
        return f"{self.prefix}:book:{venue}:{symbol}"

    def aggregated_book(self, symbol: str) -> str:
        """Hash like book(), plus shares (per level, each venue's share), venues and excluded.

        shares is JSON {"bids": [{venue: share}, ...], "asks": [...]}; excluded lists (venue, reason).
        """
        return f"{self.prefix}:book:agg:{symbol}"

    @property
    def book_updates(self) -> str:
        """Pub/sub channel: the key of each book hash as it is rewritten (consumers wake on it)."""
        return f"{self.prefix}:book-updates"

    def trades(self, venue: str, symbol: str) -> str:
        """Stream (bounded with MAXLEN ~): price, qty, side, ts, id."""
        return f"{self.prefix}:trades:{venue}:{symbol}"

    # trading state
    def orders(self, venue: str) -> str:
        """Hash: client order id -> JSON of the open order."""
        return f"{self.prefix}:orders:{venue}"

    @property
    def inventory(self) -> str:
        """Hash: per asset JSON (position, target, deviation, coefficient, price)."""
        return f"{self.prefix}:inventory"

    @property
    def coefficients(self) -> str:
        """Hash: per venue volume coefficient, plus the inventory coefficient."""
        return f"{self.prefix}:coefficients"

    def line(self, line_id: str) -> str:
        """Hash: a line's state (active orders, placed, filled, cancelled, coefficients)."""
        return f"{self.prefix}:line:{line_id}"

    @property
    def lines(self) -> str:
        """Set of line ids."""
        return f"{self.prefix}:lines"

    @property
    def rebalance(self) -> str:
        """Hash: asset -> JSON rebalancing suggestion."""
        return f"{self.prefix}:rebalance"

    @property
    def pnl(self) -> str:
        """Hash: fills, fills per venue, quote volume, fees, position, mark, PnL in the quote asset."""
        return f"{self.prefix}:pnl"

    @property
    def risk_events(self) -> str:
        """Stream of limit events."""
        return f"{self.prefix}:risk-events"

    # process
    @property
    def health(self) -> str:
        """Hash: status (starting/ready/paused/unhealthy/stopping), heartbeat ts, warnings."""
        return f"{self.prefix}:health"

    @property
    def control(self) -> str:
        """Stream of operator commands (pause, resume, cancel-all)."""
        return f"{self.prefix}:control"

    @property
    def control_acks(self) -> str:
        """Stream of acknowledgements, one per command id."""
        return f"{self.prefix}:control-acks"
