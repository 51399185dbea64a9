"""Benchmark: the vectorised Monte Carlo against a plain per-path Python loop, and model quote latency.

Run: ``python bench/simulate.py``. Prints figures and ratios against baselines measured in the
same run (no thresholds: the figures are for reading).
"""

from __future__ import annotations

import math
import random
import time

from strategies.calibration import CalibrationState
from strategies.models import quote
from strategies.models.avellaneda_stoikov import finite_horizon_depths
from strategies.models.base import (
    AvellanedaStoikovConfig,
    CarteaJaimungalConfig,
    GlftConfig,
    HoStollConfig,
    PricingModelConfig,
)
from strategies.simulation import MarketSpec
from strategies.simulation.as2008 import run


def scalar_as2008(gamma: float, runs: int, seed: int, market: MarketSpec) -> float:
    """Baseline: the same experiment, one path and one step at a time in plain Python."""
    rng = random.Random(seed)
    jump = market.sigma * math.sqrt(market.dt)
    total = 0.0
    for _ in range(runs):
        mid, q, cash = market.s0, 0.0, 0.0
        for step in range(market.steps):
            tau = market.horizon - step * market.dt
            bid_depth, ask_depth = finite_horizon_depths(q, gamma, market.sigma, tau, market.k)
            bid, ask = mid - bid_depth, mid + ask_depth
            mid += jump if rng.random() < 0.5 else -jump
            if rng.random() < market.A * math.exp(-market.k * (mid - bid)) * market.dt:
                cash, q = cash - bid, q + 1
            if rng.random() < market.A * math.exp(-market.k * (ask - mid)) * market.dt:
                cash, q = cash + ask, q - 1
        total += cash + q * mid
    return total / runs


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    market = MarketSpec()
    runs = 1000
    vectorised = min(timed(run, 0.1, runs, seed) for seed in range(3))
    baseline_runs = 100
    scalar = timed(scalar_as2008, 0.1, baseline_runs, 0, market) * runs / baseline_runs
    print(f"as2008 γ=0.1, {runs} runs × {market.steps} steps, both strategies")
    print(f"  vectorised numpy : {vectorised * 1e3:8.1f} ms")
    print(f"  per-path Python  : {scalar * 1e3:8.1f} ms (one strategy, {baseline_runs} runs scaled)")
    print(f"  speed-up         : {2 * scalar / vectorised:8.1f}× (per strategy)")

    calibration = CalibrationState(sigma=0.002, A=1.5, k=30.0, orders=500, mid=1.0)
    configs: dict[str, PricingModelConfig] = {
        "as2008 rolling": AvellanedaStoikovConfig(gamma=0.1, horizon="rolling", horizon_s=300.0),
        "as2008 infinite": AvellanedaStoikovConfig(gamma=0.1, horizon="infinite", q_max=20),
        "ho_stoll linear": HoStollConfig(gamma=0.1, horizon_s=60.0, demand="linear", alpha=2.0, beta=50.0),
        "glft approx": GlftConfig(gamma=0.1),
        "glft exact": GlftConfig(gamma=0.1, method="exact", q_max=20, horizon_s=600.0),
        "cjp": CarteaJaimungalConfig(running_penalty=0.001, terminal_penalty=0.01, horizon_s=600.0),
    }
    n = 20_000
    results: dict[str, float] = {}
    for name, config in configs.items():
        quote(config, 1.0, 3.0, None, 0.0, calibration)  # warm the cached tables
        start = time.perf_counter()
        for i in range(n):
            quote(config, 1.0, float(i % 7 - 3), None, 0.0, calibration)
        results[name] = (time.perf_counter() - start) / n
    base = results["as2008 rolling"]
    print(f"quote() latency per call ({n} calls, inventory −3…3), ratio to as2008 rolling")
    for name, seconds in results.items():
        print(f"  {name:<16}: {seconds * 1e6:7.2f} µs  ({seconds / base:4.1f}×)")


if __name__ == "__main__":
    main()
