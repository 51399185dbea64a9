"""What the order manager needs from persistence.

Defined here so ``connectors`` does not import ``daemon``; ``daemon.store.Store``
implements it (and tests may use it directly).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

from connectors.execution.orders import OrderRecord
from strategies.types import Fill


class ExecutionStore(Protocol):
    async def record_order_event(self, order: OrderRecord) -> None:
        """Upsert the order's current state and append the change to its history; durable on return."""
        ...

    async def record_fill(self, fill: Fill) -> bool:
        """Write a fill; False if (venue, symbol, trade_id) is already recorded. Durable on return."""
        ...

    async def live_orders(self, venue: str) -> list[OrderRecord]:
        """Orders of this venue whose last recorded state is not terminal."""
        ...

    async def order(self, venue: str, client_order_id: str) -> OrderRecord | None:
        """The last recorded state of one order, if we ever wrote it down."""
        ...

    async def order_by_venue_id(self, venue: str, venue_order_id: str) -> OrderRecord | None:
        """The order the venue knows by this id, if we recorded the id."""
        ...

    async def last_fill_ts(self, venue: str, symbol: str) -> float | None:
        """Venue time of the newest recorded fill on this market."""
        ...

    async def record_balance_snapshot(
        self, venue: str, balances: Mapping[str, Mapping[str, Decimal]], ts: float | None = None
    ) -> None:
        """Write the account's balances (asset -> free/used/total)."""
        ...
