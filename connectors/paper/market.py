"""The paper venue's simulated market: latent fair values and the participants that trade on them.

Each asset has a latent fair value against its quote asset (usually USDT): a geometric random
walk with compound-Poisson jumps whose volatility and trading volume switch between regimes
(a continuous-time Markov chain). Every attached (venue, symbol) sees that value through its
own lag and its own slowly mean-reverting noise; a cross pair such as BERA/BTC, whose legs
both have a fair value in the same quote, follows the ratio of the legs (BERA/USDT ÷
BTC/USDT) plus the venue's noise.

On every attached book, passive makers keep ladders of tens of levels per side around their
view and re-quote a fraction of them over time (cancel and post, so diffs churn), and takers
arrive as a Poisson process with heavy-tailed sizes, leaning towards the side the book is
mispriced on, and occasionally sweep several levels. Both trade through the engine's normal
rules under their own generously funded accounts.

All randomness comes from ``random.Random`` instances derived from the seed (one per asset and
one per venue/symbol), and simulated time advances only by ``step(dt)``: the same seed, scenario
and step sequence give the same order flow.

Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.paper.engine import MatchingEngine, OrderRejected, OrderType, RejectReason, SymbolSpec
from strategies.clock import Clock
from strategies.types import MarketRules, Side

MAKER_ACCOUNT = "mm-sim"
TAKER_ACCOUNT = "taker-sim"
USD_ASSETS = frozenset({"USDT", "USDC", "USD", "FDUSD", "BUSD"})
# Sim accounts start with this much of every asset they trade, in USD, and are topped up by as
# much again whenever an order bounces for balance: the sim never runs dry.
SIM_FUNDING_USD = 100_000_000.0
_BPS = 1e-4


class RegimeParams(BaseModel):
    """One volatility/volume regime of an asset's fair value."""

    model_config = ConfigDict(extra="forbid")

    name: str = "normal"
    vol_multiplier: float = Field(default=1.0, gt=0)
    volume_multiplier: float = Field(default=1.0, gt=0)
    mean_duration_s: float = Field(default=600.0, gt=0)


class FairValueParams(BaseModel):
    """The latent fair value of ``asset`` in ``quote``.

    Units: ``vol_per_sqrt_s`` is the standard deviation of the log price over one second
    (2e-4 ≈ 5.9 % a day); ``jump_intensity_per_s`` is the Poisson rate of jumps and
    ``jump_size_sigma`` the standard deviation of a jump's log size. The regime chain starts in
    the first regime and leaves each after an exponential time of mean ``mean_duration_s`` for
    one of the others, chosen uniformly.
    """

    model_config = ConfigDict(extra="forbid")

    asset: str
    quote: str = "USDT"
    start_price: float = Field(gt=0)
    vol_per_sqrt_s: float = Field(default=2e-4, ge=0)
    jump_intensity_per_s: float = Field(default=1 / 900, ge=0)
    jump_size_sigma: float = Field(default=0.004, ge=0)
    regimes: list[RegimeParams] = Field(default_factory=lambda: [RegimeParams()], min_length=1)


class ParticipantParams(BaseModel):
    """Who trades on one attached book.

    Sizes are in USD so one set of numbers fits BERA/USDT, BTC/USDT and BERA/BTC alike.
    Spreads widen with the square root of the regime's volatility multiplier; taker rates
    scale with its volume multiplier.
    """

    model_config = ConfigDict(extra="forbid")

    makers: int = Field(default=2, ge=1, le=20)
    levels: int = Field(default=25, ge=1, le=200)  # per side, per maker
    spread_bps_min: float = Field(default=4.0, gt=0)  # each maker's inner spread is drawn in [min, max]
    spread_bps_max: float = Field(default=30.0, gt=0)
    level_spacing_bps: float = Field(default=4.0, gt=0)  # mean gap between a maker's levels
    level_notional_usd: float = Field(default=400.0, gt=0)  # median size of an inner level
    level_size_sigma: float = Field(default=0.6, ge=0)  # lognormal sigma of level sizes
    refresh_interval_s: float = Field(default=2.0, gt=0)  # every this, a maker re-quotes ...
    requote_fraction: float = Field(default=0.2, ge=0, le=1)  # ... this fraction of its levels
    replenish_delay_s: float = Field(default=0.5, ge=0)  # mean wait before a taken level is posted again
    taker_rate_per_s: float = Field(default=1.0, ge=0)
    taker_notional_usd: float = Field(default=150.0, gt=0)  # median taker size
    taker_size_alpha: float = Field(default=1.6, gt=1)  # Pareto tail index: lower, heavier tail
    taker_size_cap: float = Field(default=50.0, gt=1)  # at most this many medians
    sweep_probability: float = Field(default=0.05, ge=0, le=1)
    sweep_levels_max: int = Field(default=6, ge=2)
    informed_bps: float = Field(
        default=5.0, gt=0
    )  # a book mispriced by this much draws ~73 % buys (or sells)

    @model_validator(mode="after")
    def _spread_range(self) -> ParticipantParams:
        if self.spread_bps_max < self.spread_bps_min:
            raise ValueError("spread_bps_max must be >= spread_bps_min")
        return self


class VenueNoiseParams(BaseModel):
    """How one venue's view differs from the fair value: a lag and an Ornstein-Uhlenbeck noise.

    ``noise_bps`` is the noise's stationary standard deviation, ``noise_half_life_s`` how
    fast a deviation decays by half.
    """

    model_config = ConfigDict(extra="forbid")

    noise_bps: float = Field(default=2.0, ge=0)
    lag_s: float = Field(default=0.0, ge=0)
    noise_half_life_s: float = Field(default=20.0, gt=0)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's product method for small means, normal beyond."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    n, prod = 0, rng.random()
    while prod > limit:
        n += 1
        prod *= rng.random()
    return n


class _FairValue:
    """One asset's latent price process and its bounded recent history (for lags)."""

    def __init__(self, params: FairValueParams, rng: random.Random) -> None:
        self.params = params
        self.rng = rng
        self.log_price = math.log(params.start_price)
        self.regime = 0
        self._regime_left = rng.expovariate(1 / params.regimes[0].mean_duration_s)
        self.history: deque[tuple[float, float]] = deque()
        self.history_span = 0.0  # longest lag any attachment asks for

    @property
    def regime_params(self) -> RegimeParams:
        return self.params.regimes[self.regime]

    def advance(self, dt: float, now: float) -> None:
        p, rng = self.params, self.rng
        self._regime_left -= dt
        if self._regime_left <= 0 and len(p.regimes) > 1:
            others = [i for i in range(len(p.regimes)) if i != self.regime]
            self.regime = rng.choice(others)
            self._regime_left = rng.expovariate(1 / p.regimes[self.regime].mean_duration_s)
        sigma = p.vol_per_sqrt_s * self.regime_params.vol_multiplier
        # Exact GBM step with zero drift in price (the -sigma²/2 keeps E[price] flat).
        self.log_price += -0.5 * sigma * sigma * dt + sigma * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        for _ in range(_poisson(rng, p.jump_intensity_per_s * dt)):
            self.log_price += rng.gauss(0.0, p.jump_size_sigma)
        self.history.append((now, self.log_price))
        horizon = now - self.history_span - 1.0
        while len(self.history) > 1 and self.history[1][0] <= horizon:
            self.history.popleft()

    def log_price_at(self, t: float) -> float:
        """The log price as of time ``t`` (the newest sample not after it)."""
        t += 1e-9  # sim times are sums of float steps: 2.2 - 2.0 must still find the 0.2 sample
        for ts, value in reversed(self.history):
            if ts <= t:
                return value
        return self.history[0][1] if self.history else self.log_price


@dataclass(slots=True)
class _Slot:
    """One rung of a maker's ladder: its offset from the view and its live order, if any."""

    offset_bps: float
    order_id: int | None = None
    price: float = 0.0
    ready_at: float = 0.0  # when an empty slot may post again


@dataclass(slots=True)
class _Maker:
    half_spread_bps: float
    bids: list[_Slot] = field(default_factory=list)
    asks: list[_Slot] = field(default_factory=list)


class _Attachment:
    """Participants on one (venue, symbol) book and that venue's view of the fair value."""

    def __init__(
        self,
        market: SimulatedMarket,
        venue: str,
        engine: MatchingEngine,
        spec: SymbolSpec,
        participants: ParticipantParams,
        noise: VenueNoiseParams,
        rng: random.Random,
    ) -> None:
        self.market = market
        self.venue = venue
        self.engine = engine
        self.spec = spec
        self.rules = MarketRules(spec.symbol, spec.tick, spec.step, spec.min_qty, spec.min_notional)
        self.params = participants
        self.noise_params = noise
        self.rng = rng
        self.noise_bps = rng.gauss(0.0, noise.noise_bps)
        # One tick in bps at the start price: on a coarse tick (BERA/BTC, ~4 bps) rungs closer
        # than a tick would pile onto the same level, and real ladders are at least a tick apart.
        start = math.exp(market.log_fair_value_at(spec.base, spec.quote, 0.0))
        self.tick_bps = float(spec.tick) / start / _BPS
        self.makers = [self._new_maker() for _ in range(participants.makers)]

    def _new_maker(self) -> _Maker:
        p, rng = self.params, self.rng
        maker = _Maker(half_spread_bps=rng.uniform(p.spread_bps_min, p.spread_bps_max) / 2)
        for slots in (maker.bids, maker.asks):
            offset = maker.half_spread_bps
            for _ in range(p.levels):
                slots.append(_Slot(offset))
                offset += max(self.tick_bps, rng.expovariate(1 / p.level_spacing_bps))
        return maker

    # ---------------------------------------------------------------- the view

    def advance_noise(self, dt: float) -> None:
        n = self.noise_params
        decay = math.exp(-dt * math.log(2) / n.noise_half_life_s)
        # Exact OU transition keeping the stationary standard deviation at noise_bps.
        self.noise_bps = self.noise_bps * decay + n.noise_bps * math.sqrt(1 - decay * decay) * self.rng.gauss(
            0.0, 1.0
        )

    def view(self, now: float) -> float:
        """This venue's price for the symbol: lagged fair value with its own noise."""
        fair = self.market.log_fair_value_at(self.spec.base, self.spec.quote, now - self.noise_params.lag_s)
        return math.exp(fair + self.noise_bps * _BPS)

    # ------------------------------------------------------------------ makers

    def requote(self, now: float, dt: float, seeding: bool) -> None:
        view = self.view(now)
        regime = self.market.regime_of(self.spec.base)
        widen = math.sqrt(regime.vol_multiplier)
        p = self.params
        requote_p = 1.0 if seeding else min(1.0, p.requote_fraction * dt / p.refresh_interval_s)
        engine, symbol, rng = self.engine, self.spec.symbol, self.rng
        for maker in self.makers:
            tolerance = max(maker.half_spread_bps, p.level_spacing_bps) * widen
            for side, slots in ((Side.BUY, maker.bids), (Side.SELL, maker.asks)):
                sign = -1.0 if side is Side.BUY else 1.0
                for level, slot in enumerate(slots):
                    target = view * (1 + sign * slot.offset_bps * widen * _BPS)
                    if slot.order_id is not None:
                        if not engine.is_open(MAKER_ACCOUNT, slot.order_id):
                            # Taken: come back after a while, as a real maker would.
                            slot.order_id = None
                            delay = p.replenish_delay_s
                            slot.ready_at = now + (rng.expovariate(1 / delay) if delay > 0 else 0.0)
                            continue
                        # Positive when the order is more aggressive than where it belongs.
                        drift_bps = -sign * (slot.price - target) / view / _BPS
                        if abs(drift_bps) <= tolerance and rng.random() >= requote_p:
                            continue
                        engine.cancel(MAKER_ACCOUNT, symbol, slot.order_id)
                        slot.order_id = None
                    elif now < slot.ready_at:
                        continue
                    self._post(slot, side, target, level)

    def _post(self, slot: _Slot, side: Side, target: float, level: int) -> None:
        p, rng = self.params, self.rng
        price = self.rules.round_price(target, side)
        if price <= 0:
            return
        # Deeper levels are larger, as on real books.
        notional_usd = (
            p.level_notional_usd
            * math.exp(rng.gauss(0.0, p.level_size_sigma))
            * (1 + level / max(1, p.levels))
        )
        qty = self._qty_for(notional_usd, float(price), price)
        order = self._place(MAKER_ACCOUNT, side, OrderType.LIMIT_MAKER, qty, price)
        if order is not None:
            slot.order_id = order
            slot.price = float(price)

    # ------------------------------------------------------------------ takers

    def take(self, now: float, dt: float) -> None:
        p, rng = self.params, self.rng
        volume = self.market.regime_of(self.spec.base).volume_multiplier
        arrivals = _poisson(rng, p.taker_rate_per_s * volume * dt)
        for _ in range(arrivals):
            self._one_taker(now)

    def _one_taker(self, now: float) -> None:
        p, rng, engine = self.params, self.rng, self.engine
        bid, ask = engine.best_bid_ask(self.spec.symbol)
        if bid is None and ask is None:
            return
        view = self.view(now)
        if bid is None or ask is None:
            side = Side.SELL if ask is None else Side.BUY
        else:
            mid = float(bid + ask) / 2
            mispricing_bps = (view - mid) / mid / _BPS
            # Informed flow: more buys when the book is below the fair value, and vice versa.
            p_buy = 1 / (1 + math.exp(-mispricing_bps / p.informed_bps))
            side = Side.BUY if rng.random() < p_buy else Side.SELL
        if rng.random() < p.sweep_probability:
            bids, asks, _ = engine.depth(self.spec.symbol, rng.randint(2, p.sweep_levels_max))
            qty = sum((q for _, q in (asks if side is Side.BUY else bids)), Decimal(0))
        else:
            # Pareto sizes with the configured median: x_m = median / 2^(1/alpha).
            scale = p.taker_notional_usd / 2 ** (1 / p.taker_size_alpha)
            notional_usd = min(
                scale * rng.paretovariate(p.taker_size_alpha), p.taker_notional_usd * p.taker_size_cap
            )
            qty = self.rules.round_size(notional_usd / self._usd_per_base(view))
        if qty < max(self.spec.min_qty, self.spec.step):
            return
        self._place(TAKER_ACCOUNT, side, OrderType.MARKET, qty, None)

    # ------------------------------------------------------------------ helpers

    def _usd_per_base(self, price_in_quote: float) -> float:
        return price_in_quote * self.market.usd_value(self.spec.quote)

    def _qty_for(self, notional_usd: float, price_f: float, price: Decimal) -> Decimal:
        qty = self.rules.round_size(notional_usd / self._usd_per_base(price_f))
        floor = max(self.spec.min_qty, self.spec.step)
        if self.spec.min_notional > 0:
            # Smallest size on the step whose notional clears the filter.
            floor = max(floor, (self.spec.min_notional / price / self.spec.step).to_integral_value(
                rounding=ROUND_CEILING) * self.spec.step)  # fmt: skip
        return max(qty, floor)

    def _place(
        self, account: str, side: Side, type: OrderType, qty: Decimal, price: Decimal | None
    ) -> int | None:
        """Place for a sim account, topping it up once if it ran dry; the order id or None."""
        for attempt in range(2):
            try:
                order, _ = self.engine.place(account, self.spec.symbol, side, type, qty, price)
                return order.order_id
            except OrderRejected as rejected:
                if rejected.reason is RejectReason.INSUFFICIENT_BALANCE and attempt == 0:
                    self.market.fund(self.engine, account, (self.spec.base, self.spec.quote))
                    continue
                # WOULD_TAKE: someone (the user's strategy) sits inside our target; skip the rung.
                return None
        return None


class SimulatedMarket:
    """Owns the fair-value processes and drives participants on any number of engines."""

    def __init__(self, fair_values: list[FairValueParams], seed: int, clock: Clock) -> None:
        self.seed = seed
        self.clock = clock
        self._fair: dict[str, _FairValue] = {}
        for params in fair_values:
            if params.asset in self._fair:
                raise ValueError(f"two fair values for {params.asset}")
            self._fair[params.asset] = _FairValue(params, random.Random(f"{seed}/fair/{params.asset}"))
        self._attachments: list[_Attachment] = []
        self._funded: set[tuple[int, str, str]] = set()  # (id(engine), account, asset)
        self._now = 0.0  # simulated seconds since start: advanced only by step()
        self._last_clock: float | None = None
        self._seeded = False
        for fv in self._fair.values():
            fv.history.append((0.0, fv.log_price))

    @property
    def now(self) -> float:
        return self._now

    def attach(
        self,
        venue: str,
        engine: MatchingEngine,
        symbol: str,
        participants: ParticipantParams,
        noise: VenueNoiseParams,
    ) -> None:
        """Let participants trade ``symbol`` on ``engine`` (the venue ``venue``)."""
        spec = engine.spec(symbol)
        self.log_fair_value_at(spec.base, spec.quote, 0.0)  # fails now if nothing prices it
        rng = random.Random(f"{self.seed}/{venue}/{symbol}")
        attachment = _Attachment(self, venue, engine, spec, participants, noise, rng)
        self._attachments.append(attachment)
        for asset in (spec.base, spec.quote):
            if asset in self._fair:
                fv = self._fair[asset]
                fv.history_span = max(fv.history_span, noise.lag_s)
        for account in (MAKER_ACCOUNT, TAKER_ACCOUNT):
            self.fund(engine, account, (spec.base, spec.quote), only_new=True)

    def fund(
        self, engine: MatchingEngine, account: str, assets: tuple[str, ...], only_new: bool = False
    ) -> None:
        """Deposit ``SIM_FUNDING_USD`` worth of each asset into a sim account."""
        for asset in assets:
            key = (id(engine), account, asset)
            if only_new and key in self._funded:
                continue
            self._funded.add(key)
            amount = Decimal(max(1, round(SIM_FUNDING_USD / self.usd_value(asset))))
            engine.deposit(account, asset, amount)

    def fair_value(self, base: str, quote: str) -> float:
        """The current latent price of ``base`` in ``quote`` (no venue lag or noise)."""
        return math.exp(self.log_fair_value_at(base, quote, self._now))

    def venue_view(self, venue: str, symbol: str) -> float:
        """What the participants on ``venue`` take ``symbol`` to be worth now (lag and noise applied)."""
        for att in self._attachments:
            if att.venue == venue and att.spec.symbol == symbol:
                return att.view(self._now)
        raise KeyError(f"{symbol} is not attached on {venue}")

    def usd_value(self, asset: str) -> float:
        """What one unit of ``asset`` is worth in USD (stablecoins count as one)."""
        if asset in USD_ASSETS:
            return 1.0
        fv = self._fair.get(asset)
        if fv is None or fv.params.quote not in USD_ASSETS:
            raise KeyError(f"no fair value prices {asset} in USD")
        return math.exp(fv.log_price)

    def regime(self, asset: str) -> str:
        """The name of the regime ``asset`` is in now."""
        return self._fair[asset].regime_params.name

    def regime_of(self, asset: str) -> RegimeParams:
        fv = self._fair.get(asset)
        return fv.regime_params if fv is not None else _NEUTRAL_REGIME

    def log_fair_value_at(self, base: str, quote: str, t: float) -> float:
        """log(base/quote) at simulated time ``t``: direct, inverse or a cross of two legs."""
        if base == quote:
            return 0.0
        b, q = self._fair.get(base), self._fair.get(quote)
        if b is not None and b.params.quote == quote:
            return b.log_price_at(t)
        if q is not None and q.params.quote == base:
            return -q.log_price_at(t)
        if b is not None and q is not None and b.params.quote == q.params.quote:
            return b.log_price_at(t) - q.log_price_at(t)
        raise KeyError(f"no fair value prices {base}/{quote}")

    def seed_books(self) -> None:
        """Post every maker's full ladder so books are deep from the start."""
        for att in self._attachments:
            att.requote(self._now, 0.0, seeding=True)
        self._seeded = True

    def step(self, dt: float | None = None) -> None:
        """Advance simulated time by ``dt`` seconds (default: clock time since the last step).

        Moves the fair values and venue noises, then lets every attached book's makers
        re-quote and its takers trade.
        """
        if dt is None:
            mono = self.clock.monotonic()
            dt = 0.0 if self._last_clock is None else mono - self._last_clock
            self._last_clock = mono
        if dt < 0:
            raise ValueError("simulated time does not go back")
        if not self._seeded:
            self.seed_books()
        self._now += dt
        for fv in self._fair.values():
            fv.advance(dt, self._now)
        for att in self._attachments:
            att.advance_noise(dt)
        for att in self._attachments:
            att.requote(self._now, dt, seeding=False)
            att.take(self._now, dt)


_NEUTRAL_REGIME = RegimeParams()
