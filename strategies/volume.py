"""Volume moving averages from the trade stream, and the volume coefficient lines scale by.

Per venue and symbol, a :class:`VolumeTracker` keeps, for every configured period (e.g. 5,
15 and 30 minutes), two moving averages of four flows — base volume, quote volume, taker-buy
and taker-sell base volume — each as a *rate* (units per second):

* **SMA**: the sum over the last ``period`` seconds divided by the period. Sums are kept in a
  ring of fixed time buckets (``bucket_s``, default ``min(periods) / 300``: 1 s for 5 minutes)
  with one running sum per period, so a trade and a query each cost O(number of periods),
  amortised over bucket boundaries crossed. The window is whole buckets: at time ``t`` it
  holds the buckets ``floor(t/bucket_s) - n + 1 .. floor(t/bucket_s)``, ``n = period/bucket_s``.
* **EWMA**: ``S(t) = Σ v_i · exp(-(t - t_i)/τ)`` with ``τ = period``, decayed exactly between
  irregular trade times, reported as ``S / (τ · (1 - exp(-h/τ)))`` where ``h`` is the history
  length. For a steady rate ``r`` that is ``r`` at any ``h`` (the second factor removes the
  start-up bias; as ``h → ∞`` it is the usual ``S/τ``).

The coefficient (seed 004) compares activity now with activity usually: for each consecutive
(short, long) pair of periods it takes one ratio per volume type, short over long, then
combines all ratios by ``min``, ``max`` or ``mid`` (the median; for two ratios their midpoint)
and clips the result to ``[min_coefficient, max_coefficient]`` (default 0.2 .. 3.0).

Volume types:

* ``base`` / ``quote``: base (or quote) volume rate, short period over long period;
* ``both``: the base and the quote ratios together, all fed to the combine;
* ``imbalance``: how one-sided the flow is, ``I = |buy - sell| / (buy + sell)`` in [0, 1], as
  ``(1 + I_short) / (1 + I_long)`` — bounded (0.5 .. 2) and 1 when the balance is as usual;
* ``ratio``: the dominant side's multiple ``D = max(buy, sell) / min(buy, sell)``, as
  ``D_short / D_long``; undefined (skipped) while either period saw only one side.

A pair counts only once the history covers its long period, and a ratio only where it is
defined (a long period with no volume has no rate to compare with). With no ratio, the
coefficient is 1.0 and the status says why. ``warm`` turns true when the history covers the
longest period. :meth:`VolumeTracker.warm_start` replays persisted trades so a restart is
not blind for half an hour.

Whether a busier market tightens or widens a line's spread, or grows or shrinks its size, is
the line's choice; this module only measures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

from strategies.clock import Clock
from strategies.types import Side, Trade

AverageKind = Literal["sma", "ewma"]
VolumeType = Literal["base", "quote", "imbalance", "ratio", "both"]
CombineMethod = Literal["min", "max", "mid"]

# Flow channels, in this order, in every per-bucket and per-period array.
_BASE, _QUOTE, _BUY, _SELL = 0, 1, 2, 3
_CHANNELS = 4


@dataclass(frozen=True, slots=True)
class VolumeCoefficientSpec:
    """How a volume coefficient is measured (one per strategy or per line)."""

    periods_s: Sequence[float] = (300.0, 900.0, 1800.0)
    average: AverageKind = "sma"
    volume_type: VolumeType = "base"
    combine: CombineMethod = "min"
    min_coefficient: float = 0.2
    max_coefficient: float = 3.0
    bucket_s: float | None = None  # SMA bucket width; None = shortest period / 300

    def __post_init__(self) -> None:
        periods = tuple(float(p) for p in self.periods_s)
        object.__setattr__(self, "periods_s", periods)
        if len(periods) < 2 or any(b <= a for a, b in pairwise(periods)):
            raise ValueError(f"need at least two strictly increasing periods, got {periods}")
        if periods[0] <= 0:
            raise ValueError("periods must be positive")
        if self.average not in ("sma", "ewma"):
            raise ValueError(f"average must be 'sma' or 'ewma', got {self.average!r}")
        if self.volume_type not in ("base", "quote", "imbalance", "ratio", "both"):
            raise ValueError(f"unknown volume_type {self.volume_type!r}")
        if self.combine not in ("min", "max", "mid"):
            raise ValueError(f"combine must be 'min', 'max' or 'mid', got {self.combine!r}")
        if not 0 < self.min_coefficient <= 1.0 <= self.max_coefficient:
            raise ValueError("need 0 < min_coefficient <= 1 <= max_coefficient")
        if self.bucket_s is not None and not 0 < self.bucket_s <= periods[0]:
            raise ValueError("bucket_s must be positive and no longer than the shortest period")

    @property
    def bucket_width(self) -> float:
        return self.bucket_s if self.bucket_s is not None else self.periods_s[0] / 300.0


@dataclass(frozen=True, slots=True)
class FlowRates:
    """One period's average flows, per second, and the taker imbalance over it."""

    period_s: float
    base: float
    quote: float
    buy: float
    sell: float

    @property
    def imbalance(self) -> float | None:
        """(buy - sell) / (buy + sell) in [-1, 1]; None with no volume."""
        total = self.buy + self.sell
        return (self.buy - self.sell) / total if total > 0.0 else None


@dataclass(frozen=True, slots=True)
class VolumeCoefficient:
    """A coefficient with its working: the ratios it came from and whether history is complete."""

    value: float
    warm: bool
    ratios: tuple[float, ...] = ()
    reason: str = ""  # why the value is the neutral 1.0, or empty


class _BucketRing:
    """Rolling sums of the four flows over several windows of whole time buckets."""

    __slots__ = ("_lengths", "_ring", "_size", "_sums", "_width", "head")

    def __init__(self, width: float, periods: Sequence[float]) -> None:
        self._width = width
        # A period that is not a whole number of buckets rounds to the nearest (at least one).
        self._lengths = [max(1, round(p / width)) for p in periods]
        self._size = max(self._lengths) + 1  # one spare slot: the bucket being overwritten is in no window
        self._ring = [[0.0] * _CHANNELS for _ in range(self._size)]
        self._sums = [[0.0] * _CHANNELS for _ in periods]
        self.head: int | None = None  # absolute index of the newest bucket

    def bucket(self, ts: float) -> int:
        return math.floor(ts / self._width)

    def advance(self, bucket: int) -> None:
        head = self.head
        if head is None or bucket - head >= self._size:
            # first use, or a silence longer than every window: nothing survives
            for slot in self._ring:
                slot[:] = (0.0, 0.0, 0.0, 0.0)
            for sums in self._sums:
                sums[:] = (0.0, 0.0, 0.0, 0.0)
            self.head = bucket
            return
        if bucket <= head:
            return
        size = self._size
        ring = self._ring
        for new in range(head + 1, bucket + 1):
            for length, sums in zip(self._lengths, self._sums, strict=True):
                leaving = ring[(new - length) % size]
                for ch in range(_CHANNELS):
                    sums[ch] -= leaving[ch]
            ring[new % size][:] = (0.0, 0.0, 0.0, 0.0)
            if new % size == 0:
                self._resum(new)
        self.head = bucket

    def _resum(self, head: int) -> None:
        # Running sums drift by float rounding; once per revolution of the ring, add them up afresh.
        size = self._size
        for length, sums in zip(self._lengths, self._sums, strict=True):
            fresh = [0.0] * _CHANNELS
            for b in range(head - length + 1, head + 1):
                slot = self._ring[b % size]
                for ch in range(_CHANNELS):
                    fresh[ch] += slot[ch]
            sums[:] = fresh

    def add(self, bucket: int, flows: Sequence[float]) -> None:
        if self.head is None or bucket > self.head:
            self.advance(bucket)
        head = self.head
        assert head is not None
        age = head - bucket
        if age >= self._size - 1:
            return  # older than the longest window
        slot = self._ring[bucket % self._size]
        for ch in range(_CHANNELS):
            slot[ch] += flows[ch]
        for length, sums in zip(self._lengths, self._sums, strict=True):
            if age < length:
                for ch in range(_CHANNELS):
                    sums[ch] += flows[ch]

    def sums(self, index: int) -> list[float]:
        # clamp: a running sum may sit a rounding error below zero after its last trade leaves
        return [max(0.0, s) for s in self._sums[index]]


class _Ewma:
    """Exactly decayed sums ``Σ v·exp(-(t - t_i)/τ)`` of the four flows for several τ."""

    __slots__ = ("_last", "_sums", "_taus")

    def __init__(self, taus: Sequence[float]) -> None:
        self._taus = list(taus)
        self._sums = [[0.0] * _CHANNELS for _ in taus]
        self._last: float | None = None

    def add(self, ts: float, flows: Sequence[float]) -> None:
        last = self._last
        if last is None:
            self._last = last = ts
        if ts >= last:
            self._decay_to(ts)
            for sums in self._sums:
                for ch in range(_CHANNELS):
                    sums[ch] += flows[ch]
        else:  # a late trade: add it already decayed to the current reference time
            for tau, sums in zip(self._taus, self._sums, strict=True):
                weight = math.exp(-(last - ts) / tau)
                for ch in range(_CHANNELS):
                    sums[ch] += flows[ch] * weight

    def _decay_to(self, ts: float) -> None:
        last = self._last
        if last is None or ts <= last:
            return
        for tau, sums in zip(self._taus, self._sums, strict=True):
            factor = math.exp(-(ts - last) / tau)
            for ch in range(_CHANNELS):
                sums[ch] *= factor
        self._last = ts

    def sums_at(self, index: int, now: float) -> list[float]:
        last = self._last
        if last is None:
            return [0.0] * _CHANNELS
        factor = math.exp(-max(0.0, now - last) / self._taus[index])
        return [s * factor for s in self._sums[index]]


def _flows(trade: Trade) -> tuple[float, float, float, float]:
    qty = trade.qty
    if trade.taker_side is Side.BUY:
        return (qty, qty * trade.price, qty, 0.0)
    return (qty, qty * trade.price, 0.0, qty)


class VolumeTracker:
    """Moving averages of one venue's trade flow in one symbol, and its volume coefficient."""

    def __init__(self, spec: VolumeCoefficientSpec, clock: Clock, started_at: float | None = None) -> None:
        """``started_at``: since when trades have been watched (default: now on ``clock``)."""
        self.spec = spec
        self._clock = clock
        self._periods: tuple[float, ...] = tuple(spec.periods_s)
        self._ring = _BucketRing(spec.bucket_width, self._periods)
        self._ewma = _Ewma(self._periods)
        self.history_start = clock.time() if started_at is None else started_at
        self.trade_count = 0

    def on_trade(self, trade: Trade) -> None:
        """Account one public trade (any order; trades older than the longest window only reach the EWMA)."""
        flows = _flows(trade)
        self._ring.add(self._ring.bucket(trade.ts), flows)
        self._ewma.add(trade.ts, flows)
        self.trade_count += 1

    def warm_start(self, trades: Iterable[Trade], since: float | None = None) -> int:
        """Replay persisted trades (e.g. from SQLite) so the averages start with history.

        ``since``: the start of the span the trades were loaded for (e.g. now - 30 min); the
        history then counts from there even if the first trade came later. Without it, from
        the earliest trade. Returns how many trades were replayed.
        """
        ordered = sorted(trades, key=lambda t: t.ts)
        for trade in ordered:
            self.on_trade(trade)
        earliest = since if since is not None else (ordered[0].ts if ordered else None)
        if earliest is not None:
            self.history_start = min(self.history_start, earliest)
        return len(ordered)

    def history_s(self, now: float | None = None) -> float:
        """Seconds of trade history behind the averages."""
        now = self._clock.time() if now is None else now
        return max(0.0, now - self.history_start)

    def rates(self, now: float | None = None) -> list[FlowRates]:
        """Average flows per second for every period, with the spec's averaging (SMA or EWMA)."""
        now = self._clock.time() if now is None else now
        history = self.history_s(now)
        out: list[FlowRates] = []
        if self.spec.average == "sma":
            self._ring.advance(self._ring.bucket(now))
            for i, period in enumerate(self._periods):
                sums = self._ring.sums(i)
                # before a window is full, divide by what it does cover (at least one bucket)
                span = min(period, max(history, self.spec.bucket_width))
                out.append(FlowRates(period, *(s / span for s in sums)))
        else:
            for i, tau in enumerate(self._periods):
                sums = self._ewma.sums_at(i, now)
                norm = tau * -math.expm1(-history / tau) if history > 0.0 else 0.0
                out.append(FlowRates(tau, *((s / norm if norm > 0.0 else 0.0) for s in sums)))
        return out

    def status(self, now: float | None = None) -> VolumeCoefficient:
        """The coefficient with its ratios and warm flag."""
        now = self._clock.time() if now is None else now
        spec = self.spec
        history = self.history_s(now)
        warm = history >= self._periods[-1]
        rates = self.rates(now)
        ratios: list[float] = []
        for short, long in pairwise(rates):
            if history < long.period_s:
                continue
            ratios.extend(_pair_ratios(spec.volume_type, short, long))
        if not ratios:
            reason = (
                f"history {history:.0f}s shorter than {self._periods[1]:g}s"
                if history < self._periods[1]
                else "no volume to compare"
            )
            return VolumeCoefficient(1.0, warm, (), reason)
        value = _combine(spec.combine, ratios)
        value = min(spec.max_coefficient, max(spec.min_coefficient, value))
        return VolumeCoefficient(value, warm, tuple(ratios))

    def coefficient(self, now: float | None = None) -> float:
        """The bounded volume coefficient; 1.0 (neutral) while there is nothing to compare."""
        return self.status(now).value


def _rate_ratio(short: float, long: float) -> list[float]:
    return [short / long] if long > 0.0 else []


def _pair_ratios(volume_type: VolumeType, short: FlowRates, long: FlowRates) -> list[float]:
    if volume_type == "base":
        return _rate_ratio(short.base, long.base)
    if volume_type == "quote":
        return _rate_ratio(short.quote, long.quote)
    if volume_type == "both":
        return _rate_ratio(short.base, long.base) + _rate_ratio(short.quote, long.quote)
    if volume_type == "imbalance":
        i_short, i_long = short.imbalance, long.imbalance
        if i_short is None or i_long is None:
            return []
        return [(1.0 + abs(i_short)) / (1.0 + abs(i_long))]
    # "ratio": dominant side's multiple over the other side
    if min(short.buy, short.sell, long.buy, long.sell) <= 0.0:
        return []
    d_short = max(short.buy, short.sell) / min(short.buy, short.sell)
    d_long = max(long.buy, long.sell) / min(long.buy, long.sell)
    return [d_short / d_long]


def _combine(method: CombineMethod, ratios: Sequence[float]) -> float:
    if method == "min":
        return min(ratios)
    if method == "max":
        return max(ratios)
    ordered = sorted(ratios)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) * 0.5


@dataclass(slots=True)
class VolumeTrackers:
    """One :class:`VolumeTracker` per (venue, symbol), created on first sight of a trade."""

    spec: VolumeCoefficientSpec
    clock: Clock
    trackers: dict[tuple[str, str], VolumeTracker] = field(default_factory=dict)

    def tracker(self, venue: str, symbol: str) -> VolumeTracker:
        key = (venue, symbol)
        found = self.trackers.get(key)
        if found is None:
            found = self.trackers[key] = VolumeTracker(self.spec, self.clock)
        return found

    def on_trade(self, trade: Trade) -> None:
        self.tracker(trade.venue, trade.symbol).on_trade(trade)

    def warm_start(self, trades: Iterable[Trade], since: float | None = None) -> int:
        """Replay persisted trades of any venues and symbols into their trackers."""
        by_key: dict[tuple[str, str], list[Trade]] = {}
        for trade in trades:
            by_key.setdefault((trade.venue, trade.symbol), []).append(trade)
        return sum(self.tracker(v, s).warm_start(ts, since) for (v, s), ts in by_key.items())

    def coefficient(self, venue: str, symbol: str, now: float | None = None) -> float:
        return self.tracker(venue, symbol).coefficient(now)
