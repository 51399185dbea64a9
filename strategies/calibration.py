"""Online calibration of the pricing models' market inputs: σ, and the arrival curve A, k.

Units (the ones ``strategies/models`` expect):

- σ is the volatility of the **mid in price units per sqrt(second)**: the realised variance of
  mid changes divided by the time they took (the models' dS = σ dW is arithmetic). Divide by the
  mid for a relative figure (``CalibrationState.sigma_bps``).
- A is market orders per second **per side** at zero depth, k per price unit:
  λ(δ) = A e^(−kδ) is the rate of market orders on one side that reach depth δ from the mid.

Volatility: two estimators of the same quantity, both ratio estimators Σ(Δs)² / Σ Δt so that
irregular book updates weigh by the time they cover: an exponentially weighted one (half-life in
seconds) and one over a rolling window.

Intensity (hftbacktest's approach, nkaz001/hftbacktest GLFT tutorial): for every market order
record its depth from the mid prevailing just before it (trade price − mid for a buyer, mid −
trade price for a seller); prints of one order sweeping several levels share a timestamp and side
and count once, at their deepest price. Over a rolling window, λ(δ) on a grid of depths is the
count of orders reaching depth ≥ δ per second per side, and ln λ = ln A − k δ is fitted by least
squares (weighted by the counts, since Var(ln N) ≈ 1/N; points with too few orders are dropped).
The grid starts at the shallowest depth seen (about the half spread: nothing trades inside it, so
λ is flat there and would bias k) and A is the fitted line's value at δ = 0.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from strategies.types import Side, Trade


class CalibrationConfig(BaseModel):
    """The ``calibration:`` settings of a symbol (seconds and price units)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    volatility: Literal["ewma", "rolling"] = "ewma"
    vol_half_life_s: PositiveFloat = Field(default=60.0, description="EWMA half-life, seconds")
    vol_window_s: PositiveFloat = Field(default=300.0, description="rolling volatility window, seconds")
    vol_min_samples: PositiveInt = Field(default=30, description="mid changes needed before σ is reported")
    intensity_window_s: PositiveFloat = Field(
        default=600.0, description="window of market orders for A and k, seconds"
    )
    depth_step: PositiveFloat = Field(description="spacing of the depth grid, price units (e.g. one tick)")
    min_orders: PositiveInt = Field(
        default=50, description="market orders needed in the window before fitting"
    )
    min_count_per_depth: PositiveInt = Field(
        default=10, description="grid points with fewer orders are not fitted"
    )


@dataclass(frozen=True, slots=True)
class CalibrationState:
    """A snapshot of the estimates; ``reason`` says what is missing (empty when complete)."""

    sigma: float | None
    A: float | None
    k: float | None
    orders: int
    mid: float | None
    reason: str = ""

    @property
    def ready(self) -> bool:
        return self.sigma is not None and self.A is not None and self.k is not None

    @property
    def sigma_bps(self) -> float | None:
        """σ relative to the mid, in basis points per sqrt(second) (what risk limits compare)."""
        if self.sigma is None or not self.mid:
            return None
        return 1e4 * self.sigma / self.mid


class EwmaVolatility:
    """σ from exponentially weighted sums of squared mid changes and of elapsed time."""

    def __init__(self, half_life_s: float, min_samples: int = 30) -> None:
        self._decay_rate = math.log(2.0) / half_life_s
        self._min_samples = min_samples
        self._sum_sq = 0.0
        self._sum_dt = 0.0
        self._samples = 0
        self._last: tuple[float, float] | None = None  # (ts, mid)

    def update(self, mid: float, ts: float) -> None:
        """Record the mid at ``ts`` (seconds); call on every book update that may move it."""
        if self._last is not None:
            last_ts, last_mid = self._last
            dt = ts - last_ts
            if dt <= 0.0:  # same instant: keep the latest mid, no time has passed
                self._last = (last_ts, mid)
                return
            decay = math.exp(-self._decay_rate * dt)
            self._sum_sq = self._sum_sq * decay + (mid - last_mid) ** 2
            self._sum_dt = self._sum_dt * decay + dt
            self._samples += 1
        self._last = (ts, mid)

    @property
    def samples(self) -> int:
        return self._samples

    @property
    def sigma(self) -> float | None:
        """Price units per sqrt(second), or None before ``min_samples`` changes."""
        if self._samples < self._min_samples or self._sum_dt <= 0.0:
            return None
        return math.sqrt(self._sum_sq / self._sum_dt)


class RollingVolatility:
    """σ from the squared mid changes of the last ``window_s`` seconds."""

    def __init__(self, window_s: float, min_samples: int = 30) -> None:
        self._window = window_s
        self._min_samples = min_samples
        self._changes: deque[tuple[float, float, float]] = deque()  # (ts, (Δs)², Δt)
        self._sum_sq = 0.0
        self._sum_dt = 0.0
        self._last: tuple[float, float] | None = None

    def update(self, mid: float, ts: float) -> None:
        """Record the mid at ``ts`` (seconds)."""
        if self._last is not None:
            last_ts, last_mid = self._last
            dt = ts - last_ts
            if dt <= 0.0:
                self._last = (last_ts, mid)
                return
            sq = (mid - last_mid) ** 2
            self._changes.append((ts, sq, dt))
            self._sum_sq += sq
            self._sum_dt += dt
        self._last = (ts, mid)
        self._expire(ts)

    def _expire(self, now: float) -> None:
        while self._changes and self._changes[0][0] < now - self._window:
            _, sq, dt = self._changes.popleft()
            self._sum_sq -= sq
            self._sum_dt -= dt
        if not self._changes:  # reset the running sums so float drift cannot accumulate
            self._sum_sq = self._sum_dt = 0.0

    @property
    def samples(self) -> int:
        return len(self._changes)

    @property
    def sigma(self) -> float | None:
        """Price units per sqrt(second), or None before ``min_samples`` changes in the window."""
        if len(self._changes) < self._min_samples or self._sum_dt <= 0.0:
            return None
        return math.sqrt(max(self._sum_sq, 0.0) / self._sum_dt)


@dataclass(frozen=True, slots=True)
class IntensityFit:
    """Result of one fit of λ(δ) = A e^(−kδ)."""

    A: float | None
    k: float | None
    orders: int
    reason: str = ""


class IntensityEstimator:
    """A and k from the depths market orders reach, over a rolling window."""

    def __init__(
        self, window_s: float, depth_step: float, min_orders: int = 50, min_count_per_depth: int = 10
    ) -> None:
        self._window = window_s
        self._step = depth_step
        self._min_orders = min_orders
        self._min_count = min_count_per_depth
        self._arrivals: deque[tuple[float, float]] = deque()  # (ts, depth)
        self._last_order: tuple[float, Side] | None = None
        self._started: float | None = None

    def start(self, ts: float) -> None:
        """Mark when observation began (the first book), so early windows are not undercounted."""
        if self._started is None:
            self._started = ts

    def on_market_order(self, price: float, taker_side: Side, ts: float, mid: float) -> None:
        """Record a print at ``price`` by a ``taker_side`` taker, ``mid`` being the mid just before it."""
        self.start(ts)
        depth = price - mid if taker_side is Side.BUY else mid - price
        if depth < 0.0:
            # A print through the mid means our mid was stale (the book moved first): no information.
            return
        if self._last_order == (ts, taker_side) and self._arrivals:
            # Same order sweeping levels: keep its deepest print.
            last_ts, last_depth = self._arrivals[-1]
            self._arrivals[-1] = (last_ts, max(last_depth, depth))
            return
        self._last_order = (ts, taker_side)
        self._arrivals.append((ts, depth))

    def on_trade(self, trade: Trade, mid: float) -> None:
        """Convenience for a shared ``Trade``."""
        self.on_market_order(trade.price, trade.taker_side, trade.ts, mid)

    def fit(self, now: float) -> IntensityFit:
        """Fit ln λ = ln A − k δ over the window ending at ``now``."""
        while self._arrivals and self._arrivals[0][0] < now - self._window:
            self._arrivals.popleft()
        orders = len(self._arrivals)
        if self._started is None:
            return IntensityFit(None, None, 0, "no market data yet")
        if orders < self._min_orders:
            return IntensityFit(
                None, None, orders, f"{orders} market orders in window, need {self._min_orders}"
            )
        elapsed = min(self._window, now - self._started)
        if elapsed <= 0.0:
            return IntensityFit(None, None, orders, "no time elapsed")
        depths = np.sort(np.fromiter((d for _, d in self._arrivals), dtype=np.float64, count=orders))
        start = math.floor(depths[0] / self._step) * self._step
        grid = start + self._step * np.arange(int((depths[-1] - start) / self._step) + 1)
        counts = orders - np.searchsorted(depths, grid - 1e-12 * self._step, side="left")
        keep = counts >= self._min_count
        if int(keep.sum()) < 3:
            return IntensityFit(
                None, None, orders, f"depths span fewer than 3 grid points with {self._min_count}+ orders"
            )
        x = grid[keep]
        y = np.log(counts[keep] / (2.0 * elapsed))  # per second per side: orders of both sides counted
        w = counts[keep].astype(np.float64)
        slope, intercept = _weighted_line(x, y, w)
        if slope >= 0.0:
            return IntensityFit(None, None, orders, "fitted intensity does not decay with depth")
        return IntensityFit(math.exp(intercept), -slope, orders)


def _weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted least squares y ≈ slope·x + intercept."""
    sw = w.sum()
    mx, my = (w * x).sum() / sw, (w * y).sum() / sw
    slope = float((w * (x - mx) * (y - my)).sum() / (w * (x - mx) ** 2).sum())
    return slope, float(my - slope * mx)


class Calibrator:
    """Everything one symbol needs: a volatility estimator and the intensity fit, one snapshot out."""

    def __init__(self, config: CalibrationConfig) -> None:
        self.config = config
        self.volatility: EwmaVolatility | RollingVolatility
        if config.volatility == "ewma":
            self.volatility = EwmaVolatility(config.vol_half_life_s, config.vol_min_samples)
        else:
            self.volatility = RollingVolatility(config.vol_window_s, config.vol_min_samples)
        self.intensity = IntensityEstimator(
            config.intensity_window_s, config.depth_step, config.min_orders, config.min_count_per_depth
        )
        self._mid: float | None = None

    def on_mid(self, mid: float, ts: float) -> None:
        """Feed every mid (book update) in time order."""
        self._mid = mid
        self.volatility.update(mid, ts)
        self.intensity.start(ts)

    def on_trade(self, trade: Trade) -> None:
        """Feed a public trade; call it before the book update that the trade caused."""
        if self._mid is not None:
            self.intensity.on_trade(trade, self._mid)

    def state(self, now: float) -> CalibrationState:
        """Current estimates and, while incomplete, what they are waiting for."""
        sigma = self.volatility.sigma
        fit = self.intensity.fit(now)
        reasons = []
        if sigma is None:
            reasons.append(
                f"volatility: {self.volatility.samples} mid changes, need {self.config.vol_min_samples}"
            )
        if fit.reason:
            reasons.append(f"intensity: {fit.reason}")
        return CalibrationState(sigma, fit.A, fit.k, fit.orders, self._mid, "; ".join(reasons))
