"""Monte Carlo market simulation of the pricing models (``stackmm simulate``).

``montecarlo`` is the engine (A–S 2008 §3.3's market: a binomial mid and Poisson market orders
filling quotes at depth δ with intensity A e^(−kδ)); ``as2008`` reproduces the paper's tables.
"""

from strategies.simulation.montecarlo import (
    MarketSpec,
    ModelPolicy,
    Policy,
    StrategyResult,
    simulate,
)

__all__ = ["MarketSpec", "ModelPolicy", "Policy", "StrategyResult", "simulate"]
