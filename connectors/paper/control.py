"""Run-time control of a paper venue over HTTP, for a venue running as its own process.

Not part of Binance's API: it lives under ``/paper/`` on the venue's port (127.0.0.1 only),
is not rate limited and is not affected by the REST fault knobs, so a test or an operator can
turn faults on and off while ``stackmm paper-venue`` runs:

- ``GET  /paper/status``: the venue, whether the market is paused, the fault knobs, open connections.
- ``POST /paper/faults``: JSON with any of ``rest_fail_rate``, ``rest_fail_mode``,
  ``rest_fail_after_share``, ``rest_delay_s``, ``timeout_hold_s`` (set the knob),
  ``drop_connections: true``, ``gap_next_depth: n`` (with optional ``symbol``),
  ``stall: seconds | null`` (null = until unstalled), ``unstall: true``, ``force_429: seconds``.
- ``POST /paper/market``: ``{"paused": true | false}`` pauses or resumes the simulated market
  (every venue of the exchange: they share it); ``{"vol_multiplier": {"BERA": 10}}`` scales an
  asset's fair-value volatility (``vol_per_sqrt_s`` of the scenario) from now on, 1 = as
  configured: a volatility spike on every venue that shares the fair value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.paper.faults import RestFailMode

if TYPE_CHECKING:
    from connectors.paper.server import PaperVenueHandle


class FaultCommand(BaseModel):
    """The body of ``POST /paper/faults``; absent keys leave their knob alone."""

    model_config = ConfigDict(extra="forbid")

    rest_fail_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    rest_fail_mode: RestFailMode | None = None
    rest_fail_after_share: float | None = Field(default=None, ge=0.0, le=1.0)
    rest_delay_s: float | None = Field(default=None, ge=0.0)
    timeout_hold_s: float | None = Field(default=None, gt=0.0)
    drop_connections: bool = False
    gap_next_depth: int | None = Field(default=None, ge=1)
    symbol: str | None = None
    stall: float | None = Field(default=None, gt=0.0, description="seconds; null = until unstalled")
    unstall: bool = False
    force_429: float | None = Field(default=None, gt=0.0)


class MarketCommand(BaseModel):
    """The body of ``POST /paper/market``; absent keys leave the market alone."""

    model_config = ConfigDict(extra="forbid")

    paused: bool | None = None
    vol_multiplier: dict[str, float] = Field(default_factory=dict, description="asset -> multiplier > 0")


class ControlApi:
    """The ``/paper/`` routes of one venue."""

    def __init__(
        self,
        handle: PaperVenueHandle,
        pause_market: Callable[[], None],
        resume_market: Callable[[], None],
        market_paused: Callable[[], bool],
        set_vol_multiplier: Callable[[str, float], None] | None = None,
        vol_multipliers: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self.handle = handle
        self._pause = pause_market
        self._resume = resume_market
        self._paused = market_paused
        self._set_vol = set_vol_multiplier
        self._vols = vol_multipliers

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/paper/status", self.status),
            web.post("/paper/faults", self.faults),
            web.post("/paper/market", self.market),
        ]

    def _status(self) -> dict[str, Any]:
        faults = self.handle.faults
        return {
            "venue": self.handle.name,
            "market_paused": self._paused(),
            "vol_multiplier": self._vols() if self._vols is not None else {},
            "connections": len(self.handle.hub.connections),
            "faults": {
                "rest_fail_rate": faults.rest_fail_rate,
                "rest_fail_mode": faults.rest_fail_mode,
                "rest_fail_after_share": faults.rest_fail_after_share,
                "rest_delay_s": faults.rest_delay_s,
                "timeout_hold_s": faults.timeout_hold_s,
                "stalled": faults.stalled,
                "forced_429_remaining_s": round(faults.forced_429_remaining(), 3),
            },
        }

    async def status(self, request: web.Request) -> web.Response:
        return _json(200, self._status())

    async def faults(self, request: web.Request) -> web.Response:
        try:
            command = FaultCommand.model_validate_json(await request.read())
        except ValidationError as exc:
            return _json(400, {"error": exc.errors(include_url=False, include_context=False)})
        faults = self.handle.faults
        for knob in (
            "rest_fail_rate",
            "rest_fail_mode",
            "rest_fail_after_share",
            "rest_delay_s",
            "timeout_hold_s",
        ):
            value = getattr(command, knob)
            if value is not None:
                setattr(faults, knob, value)
        if command.gap_next_depth is not None:
            symbol = command.symbol.upper() if command.symbol else None
            if symbol is not None and symbol not in self.handle.engine.symbols:
                return _json(400, {"error": f"unknown symbol {command.symbol}"})
            faults.gap_next_depth(command.gap_next_depth, symbol)
        if command.unstall:
            faults.unstall()
        elif "stall" in command.model_fields_set:
            faults.stall(command.stall)
        if command.force_429 is not None:
            faults.force_429(command.force_429)
        if command.drop_connections:
            await faults.drop_connections()
        return _json(200, self._status())

    async def market(self, request: web.Request) -> web.Response:
        try:
            command = MarketCommand.model_validate_json(await request.read())
        except ValidationError as exc:
            return _json(400, {"error": exc.errors(include_url=False, include_context=False)})
        for asset, multiplier in command.vol_multiplier.items():
            if self._set_vol is None:
                return _json(400, {"error": "this venue cannot change its volatility"})
            if not multiplier > 0:
                return _json(400, {"error": f"vol_multiplier of {asset} must be > 0"})
            try:
                self._set_vol(asset, multiplier)
            except KeyError:
                return _json(400, {"error": f"no fair value for {asset}"})
        if command.paused is True:
            self._pause()
        elif command.paused is False:
            self._resume()
        return _json(200, self._status())


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body, default=str), content_type="application/json")
