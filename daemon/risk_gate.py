"""The risk side of the event path: the ``risk:`` config, the context a check needs, and which
risk events change what the strategy or the order managers must do."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from daemon.config_loader import ConfigError
from daemon.venues import VenueRuntime
from strategies.aggregator import Aggregator
from strategies.config import StrategyConfig
from strategies.risk import RiskConfig, RiskContext, RiskEvent
from strategies.stacked import StackedStrategy
from strategies.types import BookHealth, MarketRules, Side, TargetSet

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


def risk_context(
    strategy: StackedStrategy | None,
    venues: Mapping[str, VenueRuntime],
    last_targets: Mapping[str, TargetSet],
    aggregator: Aggregator | None,
    rules: Mapping[tuple[str, str], MarketRules],
) -> RiskContext:
    """What the risk check needs to know now: positions, our resting and on-the-way orders,
    reference prices (the aggregated mids), book health, and the markets' assets and rules."""
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
    # targets handed to a manager are not open orders until its worker has sent them:
    # count a venue's exposure as the larger of what rests and what is on its way
    for venue, targets in last_targets.items():
        pending: dict[tuple[str, str, Side], Decimal] = {}
        for target in targets.targets:
            key = (venue, target.symbol, target.side)
            pending[key] = pending.get(key, Decimal(0)) + target.size
        for key, qty in pending.items():
            resting[key] = max(resting.get(key, Decimal(0)), qty)
    references: dict[str, float] = {}
    if aggregator is not None:
        # the aggregated mid, independent of the strategy's own reference: a fat-finger guard
        for symbol in aggregator.specs:
            mid = aggregator.combined(symbol).mid()
            if mid is not None:
                references[symbol] = mid
    assets = {symbol: base_quote(symbol) for (_, symbol) in rules}
    return RiskContext(positions, resting, references, health, assets, rules)
