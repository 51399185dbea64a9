"""Volatility per symbol for the risk engine's limits: one ``Calibrator`` per symbol.

The estimate is the EWMA σ of the aggregated mid (``strategies/calibration.py``), in bps of the
mid per sqrt(second) (``RiskEngine.on_volatility``'s unit). Feed order, as the calibrator wants
it: a public trade before the book update it caused (``on_trade``), then the mid (``on_mid``).
"""

from __future__ import annotations

from strategies.calibration import CalibrationConfig, Calibrator
from strategies.risk import VolatilityLimits
from strategies.types import Trade


class VolatilityWatch:
    """Calibrators for the traded symbols, configured from the ``risk.volatility`` section."""

    def __init__(self, limits: VolatilityLimits, ticks: dict[str, float]) -> None:
        """``ticks``: symbol -> price tick (the calibrator's depth grid step)."""
        self.limits = limits
        self.calibrators = {
            symbol: Calibrator(CalibrationConfig(
                volatility="ewma",
                vol_half_life_s=limits.half_life_s,
                vol_min_samples=limits.min_samples,
                depth_step=tick,
            ))
            for symbol, tick in ticks.items()
        }

    @property
    def enabled(self) -> bool:
        """Only worth computing when a volatility limit is configured."""
        return self.limits.widen_above is not None or self.limits.stop_above is not None

    def on_trade(self, trade: Trade) -> None:
        calibrator = self.calibrators.get(trade.symbol)
        if calibrator is not None:
            calibrator.on_trade(trade)

    def on_mid(self, symbol: str, mid: float, ts: float) -> float | None:
        """Record the mid; the volatility in bps/√s once there are enough samples (else None)."""
        calibrator = self.calibrators.get(symbol)
        if calibrator is None or mid <= 0.0:
            return None
        calibrator.on_mid(mid, ts)
        sigma = calibrator.volatility.sigma
        return None if sigma is None else 1e4 * sigma / mid
