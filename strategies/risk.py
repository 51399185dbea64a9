"""Risk limits between the strategy and the order manager: no quote reaches a venue without passing here.

``RiskEngine.check`` filters each venue's ``TargetSet`` (dropping or shrinking targets that would
break a limit); the ``on_*`` methods feed it fills, PnL marks, volatility and book health. Every
limit that starts to bite produces one ``RiskEvent`` (not one per check while it lasts); the
daemon logs them, writes them to the audit log, publishes ``state()`` to Redis and shows it in
``stackmm status``. Pure: no I/O, time from the injected clock.

Limits:

- **position** per asset (``position_limits``): no target may make the worst case — current
  position plus every resting order on other venues that moves the asset the same way, plus this
  venue's targets, all filled at once — pass ``min``/``max``. This venue's resting orders are not
  added to its targets because the set replaces them (the order manager cancels an order before
  it places its slot's replacement). Targets are kept in ladder order (level 0 first) and the
  first one that does not fit is shrunk to the room left (on the market's step, when
  ``RiskContext.rules`` has it) or dropped.
- **order size / notional** (``orders``, per symbol overrides in ``symbols``): larger targets are
  shrunk to the limit (or dropped without market rules).
- **price band** (``price_band_bps``): a target priced further than this from the reference
  price is dropped (fat-finger guard); with no reference price the symbol is not quoted.
- **PnL** (``pnl``): a daily loss (from the last mark before the configured UTC hour) or a
  drawdown from the running peak beyond its limit pulls every quote and pauses the instance
  until ``resume()``; a daily profit target optionally widens spreads (or pauses).
- **volatility** (``volatility``, in the unit the daemon feeds ``on_volatility``: bps of the mid
  per sqrt(second), ``CalibrationState.sigma_bps``): above ``widen_above`` spreads widen by
  ``widen_factor`` (read ``spread_factor()``); above ``stop_above`` the symbol stops quoting
  until volatility falls below ``resume_below`` (hysteresis).
- **book health**: a book reported stale, resyncing or disconnected (or older than
  ``max_book_age_s``) pulls the quotes on its venue (``stale_pulls: venue``) or of that symbol on
  its venue (``symbol``) until it is in sync again.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from operator import attrgetter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from strategies.clock import Clock
from strategies.types import BookHealth, Fill, MarketRules, QuoteTarget, Side, TargetSet

# Kinds of event whose arrival means quotes come off (the daemon re-runs check() or sends an empty set).
PULLING_KINDS = frozenset({"daily_loss", "drawdown", "profit_target", "volatility_stop", "stale_book"})
_ALL = "*"  # volatility state key when the daemon does not say which symbol

Severity = Literal["info", "warning", "critical"]
# a limit biting one target: (kind, venue, symbol, side, line id, level)
_BiteKey = tuple[str, str, str, Side, str, int]
# check()'s orders: per-order limits by symbol (each symbol's constants looked up once), then
# position room in ladder order (level 0 first); equal keys keep the strategy's order
_ORDER_KEY = attrgetter("symbol", "side", "level", "line_id")
# ladder order is (level, symbol, side, line_id): from _ORDER_KEY order, a stable sort by level
_LEVEL = attrgetter("level")
_ZERO = Decimal(0)
_NO_ASSETS = ("", "")  # a symbol missing from RiskContext.assets
_BUY = Side.BUY  # module constants: an enum member lookup costs more than a global one
_ONE = Decimal(1)
_MINUS_ONE = Decimal(-1)
_NEVER_LOW, _NEVER_HIGH = Decimal("Infinity"), Decimal("-Infinity")  # bounds no price is between


class PositionLimit(BaseModel):
    """Bounds on one asset's position (the number the daemon passes, e.g. total holdings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: Decimal | None = None
    max: Decimal | None = None

    @model_validator(mode="after")
    def _ordered(self) -> PositionLimit:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class OrderLimits(BaseModel):
    """Per-order caps: size in base units, notional in quote units."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_size: Decimal | None = Field(default=None, gt=0)
    max_notional: Decimal | None = Field(default=None, gt=0)


class PnlLimits(BaseModel):
    """PnL limits in quote units (positive amounts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daily_loss: Decimal | None = Field(default=None, gt=0, description="pause when today's PnL ≤ −daily_loss")
    max_drawdown: Decimal | None = Field(
        default=None, gt=0, description="pause when peak − PnL ≥ max_drawdown"
    )
    reset_hour_utc: int = Field(default=0, ge=0, le=23, description="the trading day starts at this UTC hour")
    daily_profit_target: Decimal | None = Field(default=None, gt=0)
    on_profit_target: Literal["widen", "pause"] = "widen"
    profit_target_spread_factor: float = Field(default=1.5, ge=1.0)


class VolatilityLimits(BaseModel):
    """Thresholds on the volatility fed to ``on_volatility`` (bps of mid per sqrt(second))."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    widen_above: PositiveFloat | None = None
    widen_factor: float = Field(default=2.0, ge=1.0)
    narrow_below: PositiveFloat | None = Field(
        default=None, description="leave the widened state; default 0.8 × widen_above"
    )
    stop_above: PositiveFloat | None = None
    resume_below: PositiveFloat | None = Field(
        default=None, description="quote again; default 0.8 × stop_above"
    )
    # the daemon's estimator (one per symbol, on the aggregated mid; strategies/calibration.py)
    half_life_s: PositiveFloat = Field(default=60.0, description="EWMA half-life of the estimate, seconds")
    min_samples: PositiveInt = Field(default=30, description="mid changes before volatility is judged")

    @model_validator(mode="after")
    def _hysteresis_below_thresholds(self) -> VolatilityLimits:
        if self.widen_above and self.narrow_below and self.narrow_below > self.widen_above:
            raise ValueError("narrow_below must not exceed widen_above")
        if self.stop_above and self.resume_below and self.resume_below > self.stop_above:
            raise ValueError("resume_below must not exceed stop_above")
        return self

    @property
    def narrow_level(self) -> float:
        assert self.widen_above is not None
        return self.narrow_below if self.narrow_below is not None else 0.8 * self.widen_above

    @property
    def resume_level(self) -> float:
        assert self.stop_above is not None
        return self.resume_below if self.resume_below is not None else 0.8 * self.stop_above


class RiskConfig(BaseModel):
    """The YAML ``risk:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    position_limits: dict[str, PositionLimit] = Field(default_factory=dict, description="asset -> bounds")
    orders: OrderLimits = OrderLimits()
    symbols: dict[str, OrderLimits] = Field(default_factory=dict, description="symbol -> per-order caps")
    price_band_bps: PositiveFloat | None = Field(
        default=500.0, description="max distance from the reference price"
    )
    pnl: PnlLimits = PnlLimits()
    volatility: VolatilityLimits = VolatilityLimits()
    max_book_age_s: PositiveFloat | None = Field(
        default=None, description="a book silent this long counts as stale"
    )
    stale_pulls: Literal["venue", "symbol"] = "venue"


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """One limit event, for the log, the audit trail, Redis and ``stackmm status``."""

    ts: float
    kind: str  # position_limit, max_order_size, max_order_notional, price_band, no_reference,
    # daily_loss, drawdown, profit_target, resumed, volatility_widen, volatility_stop,
    # volatility_resume, volatility_normal, stale_book, book_recovered
    severity: Severity
    venue: str = ""
    symbol: str = ""
    detail: str = ""

    @property
    def pulls_quotes(self) -> bool:
        """True when quotes must come off now (the daemon re-checks or sends an empty set)."""
        return self.kind in PULLING_KINDS


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What ``check`` needs to know about the world at this moment."""

    positions: Mapping[str, Decimal]  # asset -> position (the number position_limits bound)
    resting: Mapping[tuple[str, str, Side], Decimal]  # (venue, symbol, side) -> open qty of our orders
    reference_prices: Mapping[str, float]  # symbol -> reference price
    book_health: Mapping[tuple[str, str], BookHealth]  # (venue, symbol) -> health
    assets: Mapping[str, tuple[str, str]]  # symbol -> (base, quote)
    rules: Mapping[tuple[str, str], MarketRules] = field(default_factory=dict)  # (venue, symbol)


class VolatilityState(enum.StrEnum):
    NORMAL = "normal"
    WIDENED = "widened"
    STOPPED = "stopped"


class RiskEngine:
    """Applies ``RiskConfig`` to every target set; holds the PnL, volatility and book-health state."""

    def __init__(self, config: RiskConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._pause_reason: str | None = None
        self._pending: list[RiskEvent] = []
        self._active: set[_BiteKey] = set()  # limits biting at the last check
        # symbol -> (reference, inner band edges): the checks of one dispatch share a reference
        self._bands: dict[str, tuple[float, Decimal, Decimal]] = {}
        # PnL
        self._last_pnl: float | None = None
        self._peak: float | None = None
        self._day: int | None = None
        self._day_start_pnl = 0.0
        self._profit_target_hit = False
        self._fills_today = 0
        self._notional_today = Decimal(0)
        # volatility and books
        self._vol_state: dict[str, VolatilityState] = {}
        self._vol_value: dict[str, float] = {}
        self._unhealthy: dict[tuple[str, str], str] = {}  # (venue, symbol) -> reason

    # ------------------------------------------------------------------ state

    @property
    def paused(self) -> bool:
        """True after a PnL limit until an operator calls ``resume()``."""
        return self._pause_reason is not None

    @property
    def reason(self) -> str | None:
        """Why the instance is paused (None when it is not)."""
        return self._pause_reason

    def resume(self) -> None:
        """Operator resume: clear a PnL pause; limits measure further losses from the current PnL."""
        if self._pause_reason is None:
            return
        detail = f"resumed after {self._pause_reason}"
        self._pause_reason = None
        if self._last_pnl is not None:
            self._peak = self._last_pnl
            self._day_start_pnl = self._last_pnl
        self._pending.append(RiskEvent(self._clock.time(), "resumed", "info", detail=detail))

    def spread_factor(self, symbol: str | None = None) -> float:
        """Multiplier (≥ 1) for spreads: volatility widening and a reached profit target."""
        factor = 1.0
        widen = self.config.volatility.widen_factor
        keys = [_ALL] + ([symbol] if symbol is not None else [k for k in self._vol_state if k != _ALL])
        if any(
            self._vol_state.get(key, VolatilityState.NORMAL) is not VolatilityState.NORMAL for key in keys
        ):
            factor *= widen
        if self._profit_target_hit and self.config.pnl.on_profit_target == "widen":
            factor *= self.config.pnl.profit_target_spread_factor
        return factor

    def quoting_stopped(self, symbol: str) -> bool:
        """True while volatility keeps ``symbol`` (or everything) off the book."""
        return VolatilityState.STOPPED in (self._vol_state.get(_ALL), self._vol_state.get(symbol))

    def state(self) -> dict[str, Any]:
        """A JSON-able snapshot for Redis and ``stackmm status``."""
        return {
            "paused": self.paused,
            "reason": self._pause_reason or "",
            "pnl": self._last_pnl,
            "peak_pnl": self._peak,
            "daily_pnl": None if self._last_pnl is None else self._last_pnl - self._day_start_pnl,
            "drawdown": None if self._peak is None or self._last_pnl is None else self._peak - self._last_pnl,
            "profit_target_hit": self._profit_target_hit,
            "spread_factor": self.spread_factor(),
            "volatility": {
                k: {"state": str(v), "value": self._vol_value.get(k)} for k, v in self._vol_state.items()
            },
            "unhealthy_books": {f"{v}:{s}": reason for (v, s), reason in self._unhealthy.items()},
            "fills_today": self._fills_today,
            "notional_today": str(self._notional_today),
        }

    # ------------------------------------------------------------------ inputs

    def on_fill(self, fill: Fill) -> list[RiskEvent]:
        """Count today's fills and traded notional (positions come from the inventory manager)."""
        self._roll_day(self._clock.time())
        self._fills_today += 1
        self._notional_today += fill.price * fill.qty
        return []

    def on_mark(self, equity_or_pnl: float, now: float | None = None) -> list[RiskEvent]:
        """A new PnL (or equity) mark in quote units: checks daily loss, drawdown and profit target."""
        now = self._clock.time() if now is None else now
        self._roll_day(now, equity_or_pnl)
        pnl = equity_or_pnl
        self._last_pnl = pnl
        self._peak = pnl if self._peak is None else max(self._peak, pnl)
        events: list[RiskEvent] = []
        limits = self.config.pnl
        daily = pnl - self._day_start_pnl
        drawdown = self._peak - pnl
        if self._pause_reason is None:
            if limits.daily_loss is not None and daily <= -float(limits.daily_loss):
                events.append(self._pause(now, "daily_loss", f"daily PnL {daily:.2f} ≤ −{limits.daily_loss}"))
            elif limits.max_drawdown is not None and drawdown >= float(limits.max_drawdown):
                detail = f"drawdown {drawdown:.2f} from peak {self._peak:.2f} ≥ {limits.max_drawdown}"
                events.append(self._pause(now, "drawdown", detail))
        target = limits.daily_profit_target
        if target is not None and not self._profit_target_hit and daily >= float(target):
            self._profit_target_hit = True
            if limits.on_profit_target == "pause" and self._pause_reason is None:
                events.append(self._pause(now, "profit_target", f"daily PnL {daily:.2f} ≥ target {target}"))
            else:
                detail = (
                    f"daily PnL {daily:.2f} ≥ target {target}: spreads × {limits.profit_target_spread_factor}"
                )
                events.append(RiskEvent(now, "profit_target", "info", detail=detail))
        return events

    def on_volatility(self, sigma: float, symbol: str | None = None) -> list[RiskEvent]:
        """A new volatility reading (bps of mid per sqrt(second)) for ``symbol`` (None: all)."""
        limits = self.config.volatility
        key = symbol or _ALL
        now = self._clock.time()
        before = self._vol_state.get(key, VolatilityState.NORMAL)
        self._vol_value[key] = sigma
        after = before
        if limits.stop_above is not None and sigma > limits.stop_above:
            after = VolatilityState.STOPPED
        elif before is VolatilityState.STOPPED:
            if sigma < limits.resume_level:
                after = self._widen_or_normal(sigma, VolatilityState.WIDENED)
        else:
            after = self._widen_or_normal(sigma, before)
        self._vol_state[key] = after
        if after is before:
            return []
        if after is VolatilityState.STOPPED:
            kind = "volatility_stop"
        elif before is VolatilityState.STOPPED:
            kind = "volatility_resume"
        else:
            kind = "volatility_widen" if after is VolatilityState.WIDENED else "volatility_normal"
        severity: Severity = "warning" if after is not VolatilityState.NORMAL else "info"
        detail = f"volatility {sigma:.4g} bps/√s: {before} → {after}"
        return [RiskEvent(now, kind, severity, symbol=symbol or "", detail=detail)]

    def _widen_or_normal(self, sigma: float, current: VolatilityState) -> VolatilityState:
        limits = self.config.volatility
        if limits.widen_above is None:
            return VolatilityState.NORMAL
        if sigma > limits.widen_above:
            return VolatilityState.WIDENED
        if current is VolatilityState.WIDENED and sigma >= limits.narrow_level:
            return VolatilityState.WIDENED  # hysteresis: stay wide until clearly calmer
        return VolatilityState.NORMAL

    def on_book_health(self, venue: str, symbol: str, health: BookHealth) -> list[RiskEvent]:
        """A book's health changed: an unusable book pulls the venue's quotes until it recovers."""
        now = self._clock.time()
        problem = self._book_problem(health, now)
        return self._set_book(venue, symbol, problem, now)

    def poll_books(self, book_health: Mapping[tuple[str, str], BookHealth]) -> list[RiskEvent]:
        """Timer hook (e.g. every 100 ms): catches books that went silent without a health event."""
        now = self._clock.time()
        events: list[RiskEvent] = []
        for (venue, symbol), health in book_health.items():
            events.extend(self._set_book(venue, symbol, self._book_problem(health, now), now))
        return events

    def _book_problem(self, health: BookHealth, now: float) -> str | None:
        if not health.usable:
            return f"{health.state}: {health.reason}" if health.reason else str(health.state)
        limit = self.config.max_book_age_s
        if limit is not None and health.age(now) > limit:
            return f"no update for {health.age(now):.2f}s (limit {limit}s)"
        return None

    def _set_book(self, venue: str, symbol: str, problem: str | None, now: float) -> list[RiskEvent]:
        key = (venue, symbol)
        if problem is None:
            if self._unhealthy.pop(key, None) is not None:
                return [RiskEvent(now, "book_recovered", "info", venue, symbol, "book in sync again")]
            return []
        if key in self._unhealthy:
            self._unhealthy[key] = problem
            return []
        self._unhealthy[key] = problem
        return [RiskEvent(now, "stale_book", "warning", venue, symbol, f"quotes pulled: {problem}")]

    # ------------------------------------------------------------------ the filter

    def check(self, targets: TargetSet, ctx: RiskContext) -> tuple[TargetSet, list[RiskEvent]]:
        """The targets that pass every limit (some shrunk), and the limit events this check started."""
        now = self._clock.time()
        events = self._pending
        self._pending = []
        venue = targets.venue
        unhealthy = self._unhealthy
        no_age_limit = self.config.max_book_age_s is None
        for key, health in ctx.book_health.items():
            if key[0] != venue or (no_age_limit and health.usable and key not in unhealthy):
                continue  # another venue's book, or a healthy one that was healthy: nothing to do
            events.extend(self._set_book(venue, key[1], self._book_problem(health, now), now))

        seen: set[_BiteKey] = set()
        kept: list[QuoteTarget] = []
        if self._pause_reason is None:
            kept = self._per_order(targets.targets, ctx, now, events, seen)
            if self.config.position_limits:
                kept = self._position_limits(venue, kept, ctx, now, events, seen)
        if self._active or seen:
            self._active = {key for key in self._active if key[1] != venue} | seen
        return TargetSet(targets.venue, kept, targets.created_ts), events

    def _per_order(
        self,
        targets: list[QuoteTarget],
        ctx: RiskContext,
        now: float,
        events: list[RiskEvent],
        seen: set[_BiteKey],
    ) -> list[QuoteTarget]:
        """Book health, volatility stop, price band and order size/notional, per target.

        Everything but the target itself is constant during one check, so it is looked up once per
        (venue, symbol); the targets arrive grouped by symbol.
        """
        config = self.config
        band = config.price_band_bps
        active = self._active
        unhealthy = self._unhealthy
        vol = self._vol_state
        stopped_all = vol.get(_ALL) is VolatilityState.STOPPED
        # Prices inside [inner_low, inner_high] are surely within the band (1e-9 of slack, far
        # above float error), so only the others need the float distance, which is the rule.
        inner = band / 1e4 - 1e-9 if band is not None else 0.0
        use_inner = 1e-8 < inner < 1e3
        kept: list[QuoteTarget] = []
        current_venue = current_symbol = None
        # per (venue, symbol): blocked, reference (None: not quotable under the band), caps
        blocked = False
        reference: float | None = None
        inner_low, inner_high = _NEVER_LOW, _NEVER_HIGH
        max_size: Decimal | None = None
        max_notional: Decimal | None = None
        for t in sorted(targets, key=_ORDER_KEY):
            symbol = t.symbol
            if symbol != current_symbol or t.venue != current_venue:
                current_venue, current_symbol = t.venue, symbol
                if config.stale_pulls == "venue":
                    blocked = any(v == t.venue for v, _ in unhealthy)
                else:
                    blocked = (t.venue, symbol) in unhealthy
                blocked = blocked or stopped_all or vol.get(symbol) is VolatilityState.STOPPED
                reference = ctx.reference_prices.get(symbol)
                if reference is not None and (not math.isfinite(reference) or reference <= 0):
                    reference = None
                if reference is not None and use_inner:
                    band_edges = self._bands.get(symbol)
                    if band_edges is None or band_edges[0] != reference:
                        low, high = Decimal(reference * (1.0 - inner)), Decimal(reference * (1.0 + inner))
                        band_edges = (reference, low, high)
                        self._bands[symbol] = band_edges
                    _, inner_low, inner_high = band_edges
                else:
                    inner_low, inner_high = _NEVER_LOW, _NEVER_HIGH
                limits = config.symbols.get(symbol, config.orders)
                max_size, max_notional = limits.max_size, limits.max_notional
            if blocked:
                continue  # the event was emitted when the state changed
            price = t.price
            if band is not None and not (price.is_finite() and inner_low <= price <= inner_high):
                if reference is None:
                    key = ("no_reference", t.venue, symbol, t.side, t.line_id, t.level)
                    seen.add(key)
                    if key not in active:  # one event when a limit starts to bite, not one per check
                        detail = f"no reference price for {symbol}: not quoted"
                        events.append(RiskEvent(now, "no_reference", "warning", t.venue, symbol, detail))
                    continue
                distance_bps = abs(float(t.price) / reference - 1.0) * 1e4
                if distance_bps > band:
                    key = ("price_band", t.venue, symbol, t.side, t.line_id, t.level)
                    seen.add(key)
                    if key not in active:
                        detail = f"{t.side} {t.price} is {distance_bps:.0f} bps from {reference}"
                        events.append(RiskEvent(now, "price_band", "critical", t.venue, symbol, detail))
                    continue
            size = t.size
            if max_size is not None and size > max_size:
                key = ("max_order_size", t.venue, symbol, t.side, t.line_id, t.level)
                seen.add(key)
                if key not in active:
                    detail = f"size {size} > max {max_size}"
                    events.append(RiskEvent(now, "max_order_size", "warning", t.venue, symbol, detail))
                size = max_size
            if max_notional is not None and size * t.price > max_notional:
                key = ("max_order_notional", t.venue, symbol, t.side, t.line_id, t.level)
                seen.add(key)
                if key not in active:
                    detail = f"notional {size * t.price} > max {max_notional}"
                    events.append(RiskEvent(now, "max_order_notional", "warning", t.venue, symbol, detail))
                size = max_notional / t.price
            if size is t.size:
                kept.append(t)
            else:
                resized = self._resized(t, size, ctx)
                if resized is not None:
                    kept.append(resized)
        return kept

    @staticmethod
    def _resized(t: QuoteTarget, size: Decimal, ctx: RiskContext) -> QuoteTarget | None:
        """``t`` with ``size`` (on the market's step), or None when that cannot be sent."""
        if size >= t.size:
            return t
        rules = ctx.rules.get((t.venue, t.symbol))
        if rules is None:
            return None  # without the step we cannot make a valid smaller order
        size = rules.round_size(size)
        if rules.violation(t.price, size) is not None:
            return None
        return QuoteTarget(
            t.venue,
            t.symbol,
            t.side,
            t.price,
            size,
            t.line_id,
            t.level,
            t.refresh_tolerance_bps,
            t.size_tolerance,
            t.min_age_s,
            t.max_age_s,
        )

    def _position_limits(
        self,
        venue: str,
        targets: list[QuoteTarget],
        ctx: RiskContext,
        now: float,
        events: list[RiskEvent],
        seen: set[_BiteKey],
    ) -> list[QuoteTarget]:
        room_up, room_down = self._rooms(venue, ctx)
        active = self._active
        kept: list[QuoteTarget] = []
        current: str | None = None
        base = quote = ""
        base_up = base_down = quote_tracked = False
        for t in sorted(targets, key=_LEVEL):  # targets: _per_order's, in _ORDER_KEY order
            if t.price.is_nan():  # no order without a price; as the position maths always said
                raise InvalidOperation([InvalidOperation])
            if t.symbol != current:
                current = t.symbol
                base, quote = ctx.assets.get(current, ("", ""))
                distinct = base != quote  # one asset on both sides: only the quote move counts
                base_up, base_down = distinct and base in room_up, distinct and base in room_down
                quote_tracked = quote in room_up or quote in room_down
            if not (base_up or base_down or quote_tracked):
                kept.append(t)  # no limit on either asset
                continue
            # Per unit of size, how this order moves each asset when filled: the base by the
            # side's sign, the quote by −sign × price. Decimal throughout: the limit holds exactly.
            buy = t.side is _BUY
            size = t.size
            allowed = size
            binding: str | None = None  # the asset whose room binds, once one does
            if base_up if buy else base_down:
                room = room_up[base] if buy else room_down[base]
                if room < allowed:  # else max(0, room) fits too
                    fit = room if room > _ZERO else _ZERO
                    if fit < allowed:
                        allowed, binding = fit, base
            quote_unit = _ZERO
            if quote_tracked:
                quote_unit = -t.price if buy else t.price
                quote_room: Decimal | None = None
                if quote_unit > _ZERO:
                    quote_room = room_up.get(quote)
                elif quote_unit < _ZERO:
                    quote_room = room_down.get(quote)
                if quote_room is not None:
                    fit = max(_ZERO, quote_room) / abs(quote_unit)
                    if fit < allowed:
                        allowed, binding = fit, quote
            passed = t
            if binding is not None:  # allowed < size
                if allowed == _ZERO and _no_room_is_none(t, ctx):
                    resized = None
                else:
                    resized = self._resized(t, allowed, ctx)
                key = ("position_limit", t.venue, t.symbol, t.side, t.line_id, t.level)
                seen.add(key)
                if key not in active:  # one event when a limit starts to bite, not one per check
                    detail = f"{binding} limit: {t.side} {size} would pass it; " + (
                        f"shrunk to {resized.size}" if resized is not None else "dropped"
                    )
                    events.append(RiskEvent(now, "position_limit", "warning", t.venue, t.symbol, detail))
                if resized is None:
                    continue
                passed = resized
            taken = passed.size
            if buy:
                if base_up:
                    room_up[base] -= _ONE * taken
            elif base_down:
                room_down[base] += _MINUS_ONE * taken
            if quote_tracked:
                if quote_unit > _ZERO:
                    if quote in room_up:
                        room_up[quote] -= quote_unit * taken
                elif quote_unit < _ZERO and quote in room_down:
                    room_down[quote] += quote_unit * taken
            kept.append(passed)
        return kept

    def _rooms(self, venue: str, ctx: RiskContext) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        """Room before each asset's max and min, after its position and every resting order on
        other venues that moves it the same way (all filled at once)."""
        limits = self.config.position_limits
        exposure_up = {asset: Decimal(0) for asset, limit in limits.items() if limit.max is not None}
        exposure_down = {asset: Decimal(0) for asset, limit in limits.items() if limit.min is not None}
        if exposure_up or exposure_down:
            self._resting_exposure(venue, ctx, exposure_up, exposure_down)
        room_up: dict[str, Decimal] = {}
        room_down: dict[str, Decimal] = {}
        for asset, limit in limits.items():
            position = ctx.positions.get(asset, Decimal(0))
            if limit.max is not None:
                room_up[asset] = limit.max - position - exposure_up[asset]
            if limit.min is not None:
                room_down[asset] = position - limit.min - exposure_down[asset]
        return room_up, room_down

    @staticmethod
    def _resting_exposure(
        venue: str, ctx: RiskContext, up: dict[str, Decimal], down: dict[str, Decimal]
    ) -> None:
        """Add to ``up``/``down`` (per asset) how far resting orders on other venues move the asset
        up/down if all fill: a bid raises its base and lowers its quote, an ask the reverse."""
        prices: dict[str, Decimal | None] = {}
        assets = ctx.assets
        for (order_venue, symbol, side), qty in ctx.resting.items():
            if order_venue == venue or qty <= _ZERO:
                continue
            base, quote = assets.get(symbol, _NO_ASSETS)
            if side is _BUY:
                base_side, quote_side = up, down
            else:
                base_side, quote_side = down, up
            if base in base_side:
                base_side[base] += qty
            if quote in quote_side:
                if symbol in prices:
                    price = prices[symbol]
                else:
                    reference = ctx.reference_prices.get(symbol)
                    # valued at the reference price; without one the base-asset limit still counts it
                    price = prices[symbol] = None if reference is None else Decimal(repr(reference))
                if price is not None:
                    quote_side[quote] += qty * price

    # ------------------------------------------------------------------ days and pauses

    def _roll_day(self, now: float, pnl: float | None = None) -> None:
        day = math.floor((now - self.config.pnl.reset_hour_utc * 3600) / 86400)
        if self._day == day:
            return
        self._day = day
        # The day starts at the last mark before the boundary (the PnL at the reset hour).
        self._day_start_pnl = self._last_pnl if self._last_pnl is not None else (pnl or 0.0)
        self._profit_target_hit = False
        self._fills_today = 0
        self._notional_today = Decimal(0)

    def _pause(self, now: float, kind: str, detail: str) -> RiskEvent:
        self._pause_reason = f"{kind}: {detail}"
        return RiskEvent(now, kind, "critical", detail=f"{detail}; all quotes pulled, paused until resumed")


def _no_room_is_none(t: QuoteTarget, ctx: RiskContext) -> bool:
    """True when ``RiskEngine._resized(t, 0, ctx)`` is surely None, so the rounding can be skipped
    (the common case of a limit with no room left); False when only ``_resized`` can tell (it may
    raise on odd rules or prices, as it always did)."""
    rules = ctx.rules.get((t.venue, t.symbol))
    # size 0 rounds to 0 on any non-zero step and is below every minimum
    return rules is None or (rules.step != _ZERO and rules.tick != _ZERO and t.price.is_finite())
