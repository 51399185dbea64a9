"""The Monte Carlo engine: every path of a strategy advanced at once with numpy.

The market is Avellaneda & Stoikov (2008) §3.3's: the mid moves ±σ√dt with probability ½ each
step; quotes are set from the mid at the start of the step, the mid moves, and a resting bid at
price p^b is hit with probability λ(δ)·dt = A e^(−kδ)·dt (capped at 1), δ = s_(t+dt) − p^b
being its distance from the mid the market orders meet; likewise the ask; each fill is one lot
at the quoted price. Profit is
the terminal wealth X_T + q_T S_T (the paper's measure: inventory marked at the mid, no
liquidation cost).

All strategies in one call see the same mid paths and the same uniform draws for fills (common
random numbers), so their differences are not sampling noise.

A policy maps (step, T − t, mids, inventories) of all paths to (bid depths, ask depths); an
infinite depth means no quote on that side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from strategies.calibration import CalibrationState
from strategies.models import cartea_jaimungal, glft, resolve_inputs
from strategies.models import quote as model_quote
from strategies.models.base import (
    AvellanedaStoikovConfig,
    CarteaJaimungalConfig,
    GlftConfig,
    PricingModelConfig,
)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """The simulated market; defaults are A–S 2008 §3.3 (σ per sqrt(unit time), A per unit time)."""

    s0: float = 100.0
    horizon: float = 1.0  # T
    sigma: float = 2.0
    dt: float = 0.005
    A: float = 140.0
    k: float = 1.5

    @property
    def steps(self) -> int:
        return round(self.horizon / self.dt)


class Policy(Protocol):
    """A quoting strategy, vectorised over paths."""

    name: str

    def depths(self, step: int, tau: float, mid: FloatArray, q: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(bid depths, ask depths) from the mid for every path; inf = no quote."""
        ...


@dataclass(slots=True)
class StrategyResult:
    """One strategy's outcome over all runs, with the paper's table columns."""

    name: str
    profits: FloatArray
    final_q: FloatArray
    spread_mean: float  # average quoted spread δ^a + δ^b over steps with both sides quoted
    fills_mean: float  # average number of fills per run
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def profit_mean(self) -> float:
        return float(self.profits.mean())

    @property
    def profit_std(self) -> float:
        return float(self.profits.std(ddof=1))

    @property
    def q_mean(self) -> float:
        return float(self.final_q.mean())

    @property
    def q_std(self) -> float:
        return float(self.final_q.std(ddof=1))

    def row(self) -> dict[str, float | str]:
        """The columns of A–S 2008's tables."""
        return {
            "strategy": self.name,
            "spread": self.spread_mean,
            "profit": self.profit_mean,
            "std_profit": self.profit_std,
            "final_q": self.q_mean,
            "std_final_q": self.q_std,
            "fills": self.fills_mean,
        }


def simulate(market: MarketSpec, policies: list[Policy], runs: int, seed: int) -> list[StrategyResult]:
    """Run every policy over the same ``runs`` paths; results in the order of ``policies``."""
    rng = np.random.default_rng(seed)
    steps = market.steps
    jump = market.sigma * np.sqrt(market.dt)
    moves = np.where(rng.random((steps, runs)) < 0.5, jump, -jump)
    bid_draws = rng.random((steps, runs))
    ask_draws = rng.random((steps, runs))
    return [_run(market, policy, moves, bid_draws, ask_draws) for policy in policies]


def _run(
    market: MarketSpec, policy: Policy, moves: FloatArray, bid_draws: FloatArray, ask_draws: FloatArray
) -> StrategyResult:
    steps, runs = moves.shape
    mid = np.full(runs, market.s0)
    q = np.zeros(runs)
    cash = np.zeros(runs)
    fills = np.zeros(runs)
    spread_sum = 0.0
    spread_count = 0
    for step in range(steps):
        tau = market.horizon - step * market.dt
        bid_depth, ask_depth = policy.depths(step, tau, mid, q)
        both = np.isfinite(bid_depth) & np.isfinite(ask_depth)
        spread_sum += float((bid_depth[both] + ask_depth[both]).sum())
        spread_count += int(both.sum())
        bid_price, ask_price = mid - bid_depth, mid + ask_depth
        mid = mid + moves[step]
        # Market orders during the step reach depths measured from the mid they meet (the moved
        # one): quotes the mid moved toward fill more often, which is the adverse selection a
        # resting quote suffers. This is the order of events that reproduces the paper's figures.
        with np.errstate(over="ignore", invalid="ignore"):  # a quote through the mid: certain fill
            p_bid = np.minimum(1.0, market.A * np.exp(-market.k * (mid - bid_price)) * market.dt)
            p_ask = np.minimum(1.0, market.A * np.exp(-market.k * (ask_price - mid)) * market.dt)
        bought = bid_draws[step] < p_bid
        sold = ask_draws[step] < p_ask
        cash -= np.where(bought, bid_price, 0.0)
        cash += np.where(sold, ask_price, 0.0)
        q += bought.astype(np.float64) - sold.astype(np.float64)
        fills += bought.astype(np.float64) + sold.astype(np.float64)
    return StrategyResult(
        name=policy.name,
        profits=cash + q * mid,
        final_q=q,
        spread_mean=spread_sum / spread_count if spread_count else float("nan"),
        fills_mean=float(fills.mean()),
    )


class ModelPolicy:
    """Any configured pricing model as a policy, through ``strategies.models``.

    The market's σ, A and k stand in for calibration (values pinned in the config win, as live).
    In the simulator a finite-horizon model's horizon is the simulation's end: A–S (session or
    rolling), GLFT exact with a horizon and CJP see T − t run down to 0. Ho–Stoll keeps its
    constant one-period horizon, and the infinite-horizon / stationary variants stay stationary.

    Closed forms go through ``strategies.models.quote`` once per distinct inventory in each step
    (every model is translation invariant, so the mid does not matter). The matrix-exponential
    models (GLFT exact, CJP) are tabulated once on the simulation's time grid with the same
    modules' ``*_tables`` functions (one matrix exponential per run instead of one per step) and
    looked up with the same whole-lot rounding and bounds as their ``quote``.
    """

    def __init__(self, name: str, config: PricingModelConfig, market: MarketSpec) -> None:
        self.name = name
        self.config = config
        self._market = market
        self._calibration = CalibrationState(market.sigma, market.A, market.k, orders=0, mid=market.s0)
        self._tables: tuple[FloatArray, FloatArray] | None = None
        self._q_bounds = (0, 0)
        inputs = resolve_inputs(config, None, self._calibration)
        taus = market.dt * np.arange(market.steps + 1, dtype=np.float64)
        sigma, a, k = inputs.sigma or market.sigma, inputs.A or market.A, inputs.k or market.k
        if isinstance(config, GlftConfig) and config.method == "exact" and config.horizon_s is not None:
            xi = config.gamma if config.xi is None else config.xi
            self._tables = glft.exact_depth_tables(config.gamma, xi, sigma, a, k, config.q_max, taus)
            self._q_bounds = (-config.q_max, config.q_max)
        elif isinstance(config, CarteaJaimungalConfig):
            self._tables = cartea_jaimungal.depth_tables(
                config.running_penalty,
                config.terminal_penalty,
                k,
                a,
                config.q_min,
                config.q_max,
                taus,
                config.adverse_selection,
                config.drift,
            )
            self._q_bounds = (config.q_min, config.q_max)

    def _config_at(self, tau: float) -> PricingModelConfig:
        config = self.config
        if isinstance(config, AvellanedaStoikovConfig) and config.horizon != "infinite":
            return config.model_copy(update={"horizon": "rolling", "horizon_s": tau})
        return config

    def depths(self, step: int, tau: float, mid: FloatArray, q: FloatArray) -> tuple[FloatArray, FloatArray]:
        if self._tables is not None:
            return self._lookup(tau, q)
        config = self._config_at(tau)
        levels, index = np.unique(q, return_inverse=True)
        bids = np.empty(len(levels))
        asks = np.empty(len(levels))
        for i, level in enumerate(levels):
            result = model_quote(config, 0.0, float(level) * config.lot_size, None, 0.0, self._calibration)
            if result is None:
                raise ValueError(f"{self.name}: model cannot quote with the simulated market's inputs")
            bids[i], asks[i] = result.bid_depth, result.ask_depth
        return bids[index], asks[index]

    def _lookup(self, tau: float, q: FloatArray) -> tuple[FloatArray, FloatArray]:
        assert self._tables is not None
        bids, asks = self._tables
        row = round(tau / self._market.dt)
        q_min, q_max = self._q_bounds
        lots = np.trunc(q)  # whole lots, toward zero inventory (as the models' quote)
        index = (np.clip(lots, q_min, q_max) - q_min).astype(np.intp)
        bid, ask = bids[row][index], asks[row][index]
        return np.where(lots > q_max, np.inf, bid), np.where(lots < q_min, np.inf, ask)
