"""Venue balance snapshots with the venue time they describe.

The inventory manager needs to know which of our fills a balance snapshot already holds (see
``strategies/inventory.py``: a snapshot as of venue time T holds every fill with trade time
≤ T). Binance's account response says when: ``updateTime`` (ms, venue clock); ccxt keeps the
raw response in ``info``. The adapter's ``fetch_balances`` drops it, so this asks through the
adapter's own limiter and error mapping, and keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.execution.adapter import VenueAdapter
from connectors.execution.errors import classify
from connectors.execution.rate_limit import Weights

_CCXT_SUMMARY_KEYS = frozenset({"info", "free", "used", "total"})


@dataclass(frozen=True, slots=True)
class BalanceSnapshot:
    """asset -> {"free", "used", "total"}, as of venue time ``as_of`` (seconds; None: unknown)."""

    parts: dict[str, dict[str, Decimal]]
    as_of: float | None

    @property
    def totals(self) -> dict[str, Decimal]:
        return {asset: p["total"] for asset, p in self.parts.items()}


async def fetch_balance_snapshot(adapter: VenueAdapter) -> BalanceSnapshot:
    """The account's balances and the venue time they are as of (raises the adapter's outcomes)."""
    await adapter.limiter.acquire(Weights.ACCOUNT)
    adapter.stats.requests += 1
    try:
        balance: dict[str, Any] = await adapter.exchange.fetch_balance()
    except Exception as exc:  # every ccxt/network error becomes a typed outcome, as in the adapter
        raise classify(exc, getattr(adapter.exchange, "last_response_headers", None)) from exc
    info = balance.get("info") or {}
    parts: dict[str, dict[str, Decimal]] = {}
    for raw in info.get("balances", []) if isinstance(info, dict) else []:
        free, locked = Decimal(str(raw["free"])), Decimal(str(raw["locked"]))
        parts[raw["asset"]] = {"free": free, "used": locked, "total": free + locked}
    if not parts:  # not Binance's shape: ccxt's parsed figures, time unknown
        for asset, fields in balance.items():
            if isinstance(fields, dict) and "total" in fields and asset not in _CCXT_SUMMARY_KEYS:
                parts[asset] = {k: Decimal(str(fields.get(k) or 0)) for k in ("free", "used", "total")}
        return BalanceSnapshot(parts, None)
    update_ms = info.get("updateTime") if isinstance(info, dict) else None
    as_of = int(update_ms) / 1000.0 if update_ms else None
    return BalanceSnapshot(parts, as_of)
