"""The risk side of the event path: the ``risk:`` config, the context a check needs, and which
risk events change what the strategy or the order managers must do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from daemon.config_loader import ConfigError
from daemon.venues import VenueRuntime
from strategies.aggregator import Aggregator
from strategies.config import StrategyConfig
from strategies.reference import ReferenceKind, ReferenceSpec, reference_price
from strategies.risk import RiskConfig, RiskContext, RiskEvent
from strategies.stacked import StackedStrategy
from strategies.types import BookHealth, MarketRules, Side, TargetSet

# the aggregated mid (best bid and ask across every usable book): the reference of risk checks
# and of volatility limits, independent of any line's own reference
AGGREGATED_MID = ReferenceSpec(ReferenceKind.AGGREGATED)
# events after which quotes may come back: re-check the strategy's targets
RELEASING_KINDS = frozenset({"book_recovered", "resumed", "volatility_resume", "volatility_normal"})
# events after which the risk engine's spread factor may differ: pass it to the strategy
WIDENING_KINDS = frozenset({
    "volatility_widen", "volatility_normal", "volatility_stop", "volatility_resume",
    "profit_target", "resumed",
})


def risk_config(config: StrategyConfig) -> RiskConfig:
    """The ``risk:`` section as the risk engine's model (ConfigError naming the key if invalid)."""
    try:
        return RiskConfig.model_validate(config.risk or {})
    except ValidationError as exc:
        problems = [f"risk.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("config", problems) from exc


def event_dict(event: RiskEvent) -> dict[str, Any]:
    """A risk event as JSON-able fields (log, audit trail, Redis)."""
    return {"ts": event.ts, "kind": event.kind, "severity": event.severity, "venue": event.venue,
            "symbol": event.symbol, "detail": event.detail}


def base_quote(symbol: str) -> tuple[str, str]:
    """``BERA/USDT`` -> (``BERA``, ``USDT``)."""
    base, _, quote = symbol.partition("/")
    return base, quote


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """What a risk check reads that cannot change during one synchronous dispatch.

    Positions and open orders change only when an order manager's task runs, books only when a
    feed's does; so every target set of one book update is checked against one snapshot, and
    only the targets already handed on (``last_targets``) differ between them.
    """

    positions: dict[str, Decimal]
    open_resting: dict[tuple[str, str, Side], Decimal]
    references: dict[str, float]
    health: dict[tuple[str, str], BookHealth]
    assets: dict[str, tuple[str, str]]
    rules: Mapping[tuple[str, str], MarketRules]


def market_snapshot(
    strategy: StackedStrategy | None,
    venues: Mapping[str, VenueRuntime],
    aggregator: Aggregator | None,
    rules: Mapping[tuple[str, str], MarketRules],
    now: float,
) -> MarketSnapshot:
    """Positions, our open orders, reference prices (aggregated mids) and book health at ``now``."""
    positions: dict[str, Decimal] = {}
    if strategy is not None:
        config = strategy.config
        for asset in (config.base, *config.quotes):
            positions[asset] = sum((r.position(asset) for r in venues.values()), Decimal(0))
    resting: dict[tuple[str, str, Side], Decimal] = {}
    health: dict[tuple[str, str], BookHealth] = {}
    for runtime in venues.values():
        for order in runtime.orders.open_orders() if runtime.orders is not None else []:
            key = (runtime.name, order.symbol, order.side)
            resting[key] = resting.get(key, Decimal(0)) + order.remaining
        for symbol, book in (runtime.feed.books.items() if runtime.feed is not None else ()):
            health[(runtime.name, symbol)] = book.health
    references: dict[str, float] = {}
    if aggregator is not None:
        # the aggregated mid, independent of the strategy's own reference: a fat-finger guard.
        # Best bid and ask across usable books, not a full merge: this runs on every book update
        for symbol in aggregator.specs:
            mid = reference_price(AGGREGATED_MID, aggregator, symbol, now).value
            if mid is not None:
                references[symbol] = mid
    assets = {symbol: base_quote(symbol) for (_, symbol) in rules}
    return MarketSnapshot(positions, resting, references, health, assets, rules)


def risk_context(snapshot: MarketSnapshot, last_targets: Mapping[str, TargetSet]) -> RiskContext:
    """What the risk check needs to know now: the snapshot plus the targets already handed on."""
    resting = dict(snapshot.open_resting)
    # targets handed to a manager are not open orders until its worker has sent them:
    # count a venue's exposure as the larger of what rests and what is on its way
    for venue, targets in last_targets.items():
        pending: dict[tuple[str, str, Side], Decimal] = {}
        for target in targets.targets:
            key = (venue, target.symbol, target.side)
            pending[key] = pending.get(key, Decimal(0)) + target.size
        for key, qty in pending.items():
            resting[key] = max(resting.get(key, Decimal(0)), qty)
    return RiskContext(
        snapshot.positions, resting, snapshot.references, snapshot.health, snapshot.assets, snapshot.rules
    )
