"""The risk side of the event path: the ``risk:`` config, the context a check needs, and which
risk events change what the strategy or the order managers must do."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ValidationError

from daemon.config_loader import ConfigError
from daemon.venues import VenueRuntime
from strategies.aggregator import Aggregator
from strategies.config import StrategyConfig
from strategies.reference import ReferenceKind, ReferenceSpec, reference_price
from strategies.risk import RiskConfig, RiskContext, RiskEvent
from strategies.stacked import StackedStrategy
from strategies.types import BookHealth, MarketRules, Side, TargetSet

K = TypeVar("K")
V = TypeVar("V")
_ZERO = Decimal(0)  # shared: a Decimal is immutable

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


class OnDemand(Mapping[K, V]):
    """A mapping over fixed keys whose values are worked out on first read (a key whose value
    is None is absent). A check reads only what its targets need: the reference of their
    symbols, the position of limited assets. Nothing read changes during one synchronous
    dispatch, so a later read gives what an eager one would have."""

    __slots__ = ("_compute", "_keys", "_values")

    def __init__(self, keys: Iterable[K], compute: Callable[[K], V | None]) -> None:
        self._keys = dict.fromkeys(keys)
        self._compute = compute
        self._values: dict[K, V | None] = {}

    def get(self, key: K, default: V | None = None) -> V | None:  # type: ignore[override]
        values = self._values
        if key in values:
            value = values[key]
        elif key in self._keys:
            value = values[key] = self._compute(key)
        else:
            return default
        return default if value is None else value

    def __getitem__(self, key: K) -> V:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[K]:
        return iter([key for key in self._keys if self.get(key) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """What a risk check reads that cannot change during one synchronous dispatch.

    Positions and open orders change only when an order manager's task runs, books only when a
    feed's does; so every target set of one book update is checked against one snapshot, and
    only the targets already handed on differ between them.
    """

    positions: OnDemand[str, Decimal]
    open_resting: dict[tuple[str, str, Side], Decimal]
    references: OnDemand[str, float]
    health: dict[tuple[str, str], BookHealth]
    assets: Mapping[str, tuple[str, str]]
    rules: Mapping[tuple[str, str], MarketRules]


def market_assets(rules: Mapping[tuple[str, str], MarketRules]) -> dict[str, tuple[str, str]]:
    """Symbol -> (base, quote) of every market with rules."""
    return {symbol: base_quote(symbol) for (_, symbol) in rules}


def market_snapshot(
    strategy: StackedStrategy | None,
    venues: Mapping[str, VenueRuntime],
    aggregator: Aggregator | None,
    rules: Mapping[tuple[str, str], MarketRules],
    assets: Mapping[str, tuple[str, str]],
    now: float,
) -> MarketSnapshot:
    """Positions, our open orders, reference prices (aggregated mids) and book health at ``now``;
    ``assets`` is ``market_assets(rules)``."""

    def position(asset: str) -> Decimal:
        return sum((runtime.position(asset) for runtime in venues.values()), Decimal(0))

    def aggregated_mid(symbol: str) -> float | None:
        # the risk check's reference, independent of the strategy's own: a fat-finger guard.
        # Best bid and ask across usable books, not a full merge: this runs on every book update
        assert aggregator is not None  # no keys without one
        return reference_price(AGGREGATED_MID, aggregator, symbol, now).value

    config = strategy.config if strategy is not None else None
    positions = OnDemand((config.base, *config.quotes) if config is not None else (), position)
    resting: dict[tuple[str, str, Side], Decimal] = {}
    health: dict[tuple[str, str], BookHealth] = {}
    for runtime in venues.values():
        for order in runtime.orders.open_orders() if runtime.orders is not None else []:
            key = (runtime.name, order.symbol, order.side)
            resting[key] = resting.get(key, Decimal(0)) + order.remaining
        for symbol, book in (runtime.feed.books.items() if runtime.feed is not None else ()):
            health[(runtime.name, symbol)] = book.health
    mids = OnDemand(aggregator.specs if aggregator is not None else (), aggregated_mid)
    return MarketSnapshot(positions, resting, mids, health, assets, rules)


Exposure = dict[tuple[str, str, Side], Decimal]  # (venue, symbol, side) -> quantity


def pending_exposure(targets: TargetSet) -> Exposure:
    """What a target set handed to a venue's manager would rest, per (venue, symbol, side)."""
    venue = targets.venue
    pending: Exposure = {}
    for target in targets.targets:
        key = (venue, target.symbol, target.side)
        pending[key] = pending.get(key, _ZERO) + target.size
    return pending


def risk_context(snapshot: MarketSnapshot, handed: Mapping[str, Exposure]) -> RiskContext:
    """What the risk check needs to know now: the snapshot plus the targets already handed on
    (``handed``: venue -> ``pending_exposure`` of its last set)."""
    resting = dict(snapshot.open_resting)
    # targets handed to a manager are not open orders until its worker has sent them:
    # count a venue's exposure as the larger of what rests and what is on its way
    for pending in handed.values():
        for key, qty in pending.items():
            resting[key] = max(resting.get(key, _ZERO), qty)
    return RiskContext(
        snapshot.positions, resting, snapshot.references, snapshot.health, snapshot.assets, snapshot.rules
    )
