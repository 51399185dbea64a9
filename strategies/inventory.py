"""The inventory manager: holdings per asset and venue, the inventory coefficient, the inventory
price, the lean it puts on the quotes, and rebalancing suggestions.

Holdings come from two sources: venue balances (authoritative snapshots, ``on_balances``) and our
fills in between (``on_fill``, deduplicated by venue, symbol, trade id and client order id).

**Snapshot rule** (exact positions when a balance request and fill reports cross): a snapshot
carries the venue time it describes (``as_of``: Binance's account ``updateTime``, venue clock).
It contains every fill whose venue trade time ``fill.ts <= as_of`` and none later. So a snapshot
*resets* the venue's holdings and only our fills with ``ts > as_of`` are applied on top:

- a fill reported before the snapshot arrives but executed after ``as_of`` (it landed while the
  request was in flight, after the venue answered) is re-applied on top of the snapshot;
- a fill executed at or before ``as_of`` but reported after the snapshot (its report was still in
  flight) is already in it and does not move the holdings again (it still enters the cost basis);
- a snapshot older than the one already applied (responses out of order) is ignored.

Fills at the same venue millisecond as ``as_of`` count as included (the venue answered after
applying them). A snapshot without ``as_of`` (simulation, tests) includes exactly the fills seen
so far. A snapshot that differs from what our fills predict (a deposit, a missed fill) corrects
the book.

**Inventory coefficient** (seed 004, literally)::

    c = (current − target) / denominator,  clipped to [−1, 1]

``current`` is the base asset held over all venues, ``denominator`` the target (as in the seed:
target 1000, current 1500 → +0.5) or the max deviation (configurable). ``c > 0`` means long.

**Inventory price** by ``price_method``: ``manual`` (the configured price); ``accounting`` (the
weighted average cost of the position, fees included: a buy's cost is ``price·qty`` plus a
quote fee, or ``price·qty`` for ``qty − fee`` received when the fee is in the base; sells reduce
the position at the average cost and realise PnL; holdings that predate our fills are opened at
``manual_price`` if given, else at the first reference price seen); ``mark_to_market`` (the
current reference price). Fees in a third asset (e.g. BNB) are not in the cost: we hold no price
for it.

**Lean** (see ``strategies/lines/shaping.py``): long → bids widen and shrink, asks tighten; short
the reverse; at or beyond ``target ± max_deviation`` the side that would grow the deviation stops.
Optional no-loss rule (``no_loss_margin_bps``): never sell below ``price·(1 − m)`` nor buy above
``price·(1 + m)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from strategies.config import InventoryConfig, InventoryDenominator, InventoryPriceMethod
from strategies.lines.shaping import InventorySkew
from strategies.types import Fill, Side

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RebalanceSuggestion:
    """Move ``qty`` of ``asset`` from one venue to another to restore the venues' shares."""

    asset: str
    qty: Decimal
    from_venue: str
    to_venue: str
    reason: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "asset": self.asset,
                "qty": str(self.qty),
                "from": self.from_venue,
                "to": self.to_venue,
                "reason": self.reason,
            }
        )


@dataclass(frozen=True, slots=True)
class AssetState:
    """One asset's holdings (the base asset also carries target, coefficient and price)."""

    asset: str
    position: Decimal
    per_venue: dict[str, Decimal]
    target: Decimal | None = None
    max_deviation: Decimal | None = None
    deviation: Decimal | None = None
    coefficient: float | None = None
    price: float | None = None
    price_method: str | None = None
    avg_cost: float | None = None
    mark: float | None = None
    realised_pnl: float | None = None
    bid_allowed: bool = True
    ask_allowed: bool = True

    def to_json(self) -> str:
        data: dict[str, object] = {
            "position": str(self.position),
            "per_venue": {venue: str(qty) for venue, qty in sorted(self.per_venue.items())},
        }
        if self.target is not None:
            data.update(
                target=str(self.target),
                max_deviation=str(self.max_deviation),
                deviation=str(self.deviation),
                coefficient=self.coefficient,
                price=self.price,
                price_method=self.price_method,
                avg_cost=self.avg_cost,
                mark=self.mark,
                realised_pnl=self.realised_pnl,
                bid_allowed=self.bid_allowed,
                ask_allowed=self.ask_allowed,
            )
        return json.dumps(data)


@dataclass(frozen=True, slots=True)
class InventoryState:
    """Everything the inventory manager publishes (Redis hash ``inventory``: asset -> JSON)."""

    base: str
    assets: dict[str, AssetState]
    rebalance: list[RebalanceSuggestion] = field(default_factory=list)

    @property
    def base_state(self) -> AssetState:
        return self.assets[self.base]

    def to_redis(self) -> dict[str, str]:
        return {asset: state.to_json() for asset, state in sorted(self.assets.items())}

    def rebalance_to_redis(self) -> dict[str, str]:
        """Hash ``rebalance``: asset -> JSON suggestion (assets needing none are absent)."""
        return {s.asset: s.to_json() for s in self.rebalance}


class _CostBasis:
    """Weighted average cost of a signed position, in the primary quote, fees included."""

    __slots__ = ("avg", "qty", "realised")

    def __init__(self) -> None:
        self.qty = 0.0  # signed base quantity the average covers
        self.avg = 0.0  # average entry price per unit
        self.realised = 0.0

    def buy(self, qty: float, cost: float) -> None:
        """Receive ``qty`` for total ``cost`` (fees included)."""
        if qty <= 0.0:
            return
        unit = cost / qty
        if self.qty >= 0.0:
            self.avg = (self.avg * self.qty + cost) / (self.qty + qty)
            self.qty += qty
            return
        closing = min(qty, -self.qty)
        self.realised += (self.avg - unit) * closing
        self.qty += closing
        if qty > closing:  # flips to long
            self.qty = qty - closing
            self.avg = unit

    def sell(self, qty: float, proceeds: float) -> None:
        """Deliver ``qty`` for total ``proceeds`` (fees deducted)."""
        if qty <= 0.0:
            return
        unit = proceeds / qty
        if self.qty <= 0.0:
            self.avg = (self.avg * -self.qty + proceeds) / (-self.qty + qty)
            self.qty -= qty
            return
        closing = min(qty, self.qty)
        self.realised += (unit - self.avg) * closing
        self.qty -= closing
        if qty > closing:  # flips to short
            self.qty = -(qty - closing)
            self.avg = unit

    def adjust(self, qty: float, price: float) -> None:
        """Holdings changed outside our fills (a deposit, the opening balance): no PnL."""
        if self.qty == 0.0 or (self.qty > 0) == (qty > 0):
            total = self.qty + qty
            if total != 0.0:
                self.avg = (self.avg * abs(self.qty) + price * abs(qty)) / abs(total)
            self.qty = total
        else:
            self.qty += qty  # a withdrawal leaves the average cost where it was
            if self.qty == 0.0:
                self.avg = 0.0


class InventoryManager:
    """Tracks one base asset (and the quote assets beside it) across venues."""

    def __init__(
        self,
        config: InventoryConfig,
        base: str,
        primary_quote: str,
        venues: Sequence[str],
    ) -> None:
        self.config = config
        self.base = base
        self.primary_quote = primary_quote
        self.venues = list(venues)
        self._holdings: dict[str, dict[str, Decimal]] = {venue: {} for venue in self.venues}
        self._seen_fills: set[tuple[str, str, str, str]] = set()
        # per venue: venue time of the snapshot the holdings start from, and our fills after it
        self._snapshot_ts: dict[str, float] = {}
        self._after_snapshot: dict[str, list[tuple[float, dict[str, Decimal]]]] = {}
        self._basis = _CostBasis()
        self._pending_open = 0.0  # base held before any price was known, opened at the first mark
        self._mark: float | None = None
        # value of one unit of a quote asset in the primary quote (primary itself = 1)
        self._rates: dict[str, float] = {primary_quote: 1.0}
        self._target = float(config.target)
        self._max_dev = float(config.max_deviation)
        self._denominator = float(
            config.target if config.denominator is InventoryDenominator.TARGET else config.max_deviation
        )
        self.version = 0  # +1 on every change of holdings or cost basis
        self._position_version = -1
        self._position = _ZERO
        self._deviation = 0.0

    # ------------------------------------------------------------------ inputs

    def on_fill(self, fill: Fill) -> bool:
        """Account one of our fills; False if it was already seen (a replayed report)."""
        key = (fill.venue, fill.symbol, fill.trade_id, fill.client_order_id)
        if key in self._seen_fills:
            return False
        self._seen_fills.add(key)
        base, _, quote = fill.symbol.partition("/")
        sign = fill.side.sign
        deltas: dict[str, Decimal] = {base: sign * fill.qty, quote: -sign * fill.price * fill.qty}
        if fill.fee:
            deltas[fill.fee_asset] = deltas.get(fill.fee_asset, _ZERO) - fill.fee
        snapshot_ts = self._snapshot_ts.get(fill.venue)
        included = snapshot_ts is not None and fill.ts <= snapshot_ts
        if included:
            # the venue's snapshot already holds this fill, and booked its base change as an
            # outside change at the opening price: take that back, the fill accounts it below
            self._outside_change(-deltas[base] if base == self.base else _ZERO)
        else:
            holdings = self._holdings.setdefault(fill.venue, {})
            for asset, delta in deltas.items():
                holdings[asset] = holdings.get(asset, _ZERO) + delta
            self._after_snapshot.setdefault(fill.venue, []).append((fill.ts, deltas))
        if base == self.base:
            self._account(fill, quote)
        self.version += 1
        return True

    def _outside_change(self, qty: Decimal) -> None:
        if not qty:
            return
        opening = self._opening_price()
        if opening is None:
            self._pending_open += float(qty)
        else:
            self._basis.adjust(float(qty), opening)

    def _account(self, fill: Fill, quote: str) -> None:
        rate = self._rates.get(quote)
        if rate is None:
            return  # no price for this quote in the primary quote yet: the cost basis skips it
        price = float(fill.price) * rate
        qty = float(fill.qty)
        fee = float(fill.fee)
        quote_fee = fee * rate if fill.fee_asset == quote else 0.0
        base_fee = fee if fill.fee_asset == self.base else 0.0
        if fill.side is Side.BUY:
            self._basis.buy(qty - base_fee, price * qty + quote_fee)
        else:
            # a base fee on a sell leaves with the sold quantity
            self._basis.sell(qty + base_fee, price * qty - quote_fee)

    def on_balances(
        self, venue: str, balances: Mapping[str, Decimal], as_of: float | None = None
    ) -> bool:
        """A venue's balance snapshot (total = free + locked per asset) as of venue time ``as_of``.

        It replaces the venue's holdings; our fills after ``as_of`` are applied on top (see the
        module's snapshot rule). ``as_of=None``: it includes exactly the fills seen so far.
        False when it is older than the snapshot already applied (and so ignored)."""
        last = self._snapshot_ts.get(venue)
        after = self._after_snapshot.get(venue, [])
        if as_of is None:
            as_of = max([last or float("-inf"), *(ts for ts, _ in after)])
        elif last is not None and as_of < last:
            return False
        later = [(ts, deltas) for ts, deltas in after if ts > as_of]
        holdings = self._holdings.setdefault(venue, {})
        before = holdings.get(self.base, _ZERO)
        rebuilt = dict(holdings)  # assets the snapshot does not list keep their last value
        rebuilt.update(balances)
        for _, deltas in later:
            for asset, delta in deltas.items():
                rebuilt[asset] = rebuilt.get(asset, _ZERO) + delta
        self._holdings[venue] = rebuilt
        self._snapshot_ts[venue] = as_of
        self._after_snapshot[venue] = later
        delta = rebuilt.get(self.base, _ZERO) - before
        if delta:
            # holdings moved outside the fills we know of (the opening balance, a deposit, a
            # fill still in flight): no PnL, opened at the opening price
            self._outside_change(delta)
        self.version += 1
        return True

    def carry_over(self, previous: InventoryManager) -> None:
        """Take holdings, snapshots, seen fills and cost basis from the manager this one replaces
        (a config reload): the position must not fall back to the last balance poll."""
        self._holdings = {venue: dict(h) for venue, h in previous._holdings.items()}
        for venue in self.venues:
            self._holdings.setdefault(venue, {})
        self._seen_fills = set(previous._seen_fills)
        self._snapshot_ts = dict(previous._snapshot_ts)
        self._after_snapshot = {v: list(fills) for v, fills in previous._after_snapshot.items()}
        self._basis.qty, self._basis.avg = previous._basis.qty, previous._basis.avg
        self._basis.realised = previous._basis.realised
        self._pending_open = previous._pending_open
        self._mark = previous._mark
        self._rates.update(previous._rates)
        self.version += 1

    def on_mark(self, price: float) -> None:
        """The base asset's reference price in the primary quote."""
        self._mark = price
        if self._pending_open:
            opening = self._opening_price()
            if opening is not None:
                self._basis.adjust(self._pending_open, opening)
                self._pending_open = 0.0
                self.version += 1

    def set_rate(self, quote: str, price_in_primary: float) -> None:
        """Value of one ``quote`` unit in the primary quote (e.g. BTC in USDT), for cross symbols."""
        if quote != self.primary_quote and price_in_primary > 0.0:
            self._rates[quote] = price_in_primary

    def rate(self, quote: str) -> float | None:
        return self._rates.get(quote)

    def _opening_price(self) -> float | None:
        if self.config.manual_price is not None:
            return float(self.config.manual_price)
        return self._mark

    # ------------------------------------------------------------------ measures

    def holdings(self, asset: str) -> dict[str, Decimal]:
        """Per venue holdings of one asset."""
        return {venue: h.get(asset, _ZERO) for venue, h in self._holdings.items()}

    @property
    def position(self) -> Decimal:
        """Base asset held over all venues."""
        if self._position_version != self.version:
            self._position = sum((h.get(self.base, _ZERO) for h in self._holdings.values()), _ZERO)
            self._deviation = float(self._position) - self._target
            self._position_version = self.version
        return self._position

    @property
    def deviation(self) -> float:
        """Base held minus the target (> 0 when long)."""
        if self._position_version != self.version:
            _ = self.position
        return self._deviation

    def coefficient(self) -> float:
        """Seed 004's inventory coefficient, clipped to [−1, 1]; > 0 when long."""
        raw = self.deviation / self._denominator
        return max(-1.0, min(1.0, raw))

    @property
    def avg_cost(self) -> float | None:
        return self._basis.avg if self._basis.qty else None

    @property
    def mark(self) -> float | None:
        return self._mark

    def inventory_price(self) -> float | None:
        """The inventory price by the configured method (None when not yet known)."""
        method = self.config.price_method
        if method is InventoryPriceMethod.MANUAL:
            return float(self.config.manual_price) if self.config.manual_price is not None else None
        if method is InventoryPriceMethod.MARK_TO_MARKET:
            return self._mark
        avg = self.avg_cost
        return avg if avg is not None else self._opening_price()

    def bid_allowed(self) -> bool:
        """Buying grows the position: not at or beyond target + max deviation."""
        return self.deviation < self._max_dev

    def ask_allowed(self) -> bool:
        """Selling shrinks it: not at or beyond target − max deviation."""
        return self.deviation > -self._max_dev

    def skew(self, quote: str | None = None) -> InventorySkew:
        """The lean for quotes in ``quote`` (prices of the no-loss rule converted into it)."""
        cfg = self.config
        bid_cap = ask_floor = None
        if cfg.no_loss_margin_bps is not None:
            price = self.inventory_price()
            rate = self._rates.get(quote or self.primary_quote)
            if price is not None and rate:
                margin = cfg.no_loss_margin_bps * 1e-4
                bid_cap = price / rate * (1.0 + margin)
                ask_floor = price / rate * (1.0 - margin)
        return InventorySkew.from_coefficient(
            self.coefficient(),
            skew=cfg.skew,
            size_skew=cfg.size_skew,
            bid_allowed=self.bid_allowed(),
            ask_allowed=self.ask_allowed(),
            bid_cap=bid_cap,
            ask_floor=ask_floor,
        )

    # ------------------------------------------------------------------ rebalancing

    def venue_share(self, asset: str, venue: str) -> Decimal:
        """What ``venue`` should hold of ``asset``: configured base targets, else an even split."""
        if asset == self.base:
            targets = self.config.venue_targets
            if targets:
                return targets.get(venue, _ZERO)
            return self.config.target / len(self.venues)
        total = sum(self.holdings(asset).values(), _ZERO)
        return total / len(self.venues)

    def rebalance_suggestions(self) -> list[RebalanceSuggestion]:
        """At most one transfer per asset: from the venue most above its share to the one most below."""
        if len(self.venues) < 2:
            return []
        assets = sorted({a for h in self._holdings.values() for a in h} | {self.base})
        out: list[RebalanceSuggestion] = []
        threshold = Decimal(str(self.config.rebalance_threshold))
        for asset in assets:
            held = self.holdings(asset)
            gaps = {venue: held.get(venue, _ZERO) - self.venue_share(asset, venue) for venue in self.venues}
            surplus_venue = max(gaps, key=lambda v: gaps[v])
            deficit_venue = min(gaps, key=lambda v: gaps[v])
            surplus, deficit = gaps[surplus_venue], -gaps[deficit_venue]
            if surplus <= 0 or deficit <= 0:
                continue
            share_from = self.venue_share(asset, surplus_venue)
            share_to = self.venue_share(asset, deficit_venue)
            if surplus <= threshold * share_from and deficit <= threshold * share_to:
                continue
            qty = min(surplus, deficit)
            out.append(
                RebalanceSuggestion(
                    asset=asset,
                    qty=qty,
                    from_venue=surplus_venue,
                    to_venue=deficit_venue,
                    reason=(
                        f"{surplus_venue} holds {held[surplus_venue]} (share {share_from:.8g}), "
                        f"{deficit_venue} holds {held[deficit_venue]} (share {share_to:.8g})"
                    ),
                )
            )
        return out

    # ------------------------------------------------------------------ state

    def state(self) -> InventoryState:
        assets: dict[str, AssetState] = {}
        names = {a for h in self._holdings.values() for a in h} | {self.base}
        for asset in sorted(names):
            per_venue = self.holdings(asset)
            position = sum(per_venue.values(), _ZERO)
            if asset != self.base:
                assets[asset] = AssetState(asset, position, per_venue)
                continue
            assets[asset] = AssetState(
                asset,
                position,
                per_venue,
                target=self.config.target,
                max_deviation=self.config.max_deviation,
                deviation=position - self.config.target,
                coefficient=self.coefficient(),
                price=self.inventory_price(),
                price_method=self.config.price_method.value,
                avg_cost=self.avg_cost,
                mark=self._mark,
                realised_pnl=self._basis.realised,
                bid_allowed=self.bid_allowed(),
                ask_allowed=self.ask_allowed(),
            )
        return InventoryState(self.base, assets, self.rebalance_suggestions())
