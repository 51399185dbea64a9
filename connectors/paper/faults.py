"""Fault knobs of one paper venue: what goes wrong on purpose, set from the scenario or live.

Real venues drop WebSocket connections, skip depth sequence ranges, go silent while the
socket stays open, answer REST slowly, with 5xx or not at all, and rate limit. Each knob
here reproduces one of those so the reliability paths of a client can be tested from the
outside. The server consults the knobs; tests and the scenario's schedule turn them.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from strategies.clock import Clock, SystemClock

RestFailMode = Literal["5xx", "timeout"]


class FaultSettings(BaseModel):
    """The ``faults`` section of a venue in a scenario: starting knob values and a schedule.

    ``*_every_s`` entries repeat a fault at that period while the venue runs (0 = never).
    """

    model_config = ConfigDict(extra="forbid")

    rest_fail_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="share of REST calls that fail")
    rest_fail_mode: RestFailMode = "5xx"
    rest_fail_after_share: float = Field(
        default=0.5, ge=0.0, le=1.0, description="share of failing order calls failing after the engine acted"
    )
    rest_delay_s: float = Field(default=0.0, ge=0.0, description="added latency on every REST call")
    timeout_hold_s: float = Field(default=30.0, gt=0.0, description="how long a 'timeout' holds the response")
    drop_every_s: float = Field(default=0.0, ge=0.0)
    gap_every_s: float = Field(default=0.0, ge=0.0)
    gap_updates: int = Field(default=5, ge=1)
    stall_every_s: float = Field(default=0.0, ge=0.0)
    stall_s: float = Field(default=5.0, gt=0.0)
    force_429_every_s: float = Field(default=0.0, ge=0.0)
    force_429_s: float = Field(default=10.0, gt=0.0)


@dataclass(frozen=True, slots=True)
class RestFailure:
    """A decision to fail one REST call: how, and whether the engine acts first."""

    mode: RestFailMode
    after: bool  # True: the request is processed, then the client sees the failure


Dropper = Callable[[], Awaitable[None]]


class FaultKnobs:
    """Per-venue fault switches, mutable at run time."""

    def __init__(
        self, settings: FaultSettings | None = None, seed: int = 0, clock: Clock | None = None
    ) -> None:
        settings = settings or FaultSettings()
        self._clock: Clock = clock or SystemClock()
        self.settings = settings
        self.rest_fail_rate: float = settings.rest_fail_rate
        self.rest_fail_mode: RestFailMode = settings.rest_fail_mode
        self.rest_fail_after_share: float = settings.rest_fail_after_share
        self.rest_delay_s: float = settings.rest_delay_s
        self.timeout_hold_s: float = settings.timeout_hold_s
        self._rng = random.Random(seed)
        self._droppers: list[Dropper] = []
        self._pending_gaps: dict[str, int] = {}
        # gap_next_depth without a symbol: a running total, and how much of it each symbol has
        # taken, so every symbol gets the whole gap once (no symbol list needed up front)
        self._gaps_for_all = 0
        self._gaps_for_all_taken: dict[str, int] = {}
        self._stall_until: float | None = None  # monotonic deadline; math.inf = until unstall()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._forced_429_until = 0.0

    # --- WebSocket faults -------------------------------------------------------------

    def on_drop(self, dropper: Dropper) -> None:
        """Register the server hook that closes this venue's WebSocket connections."""
        self._droppers.append(dropper)

    async def drop_connections(self) -> None:
        """Close every WebSocket connection of this venue now (clients see a disconnect)."""
        for dropper in self._droppers:
            await dropper()

    def gap_next_depth(self, n_updates: int, symbol: str | None = None) -> None:
        """Make the next depth diffs skip ``n_updates`` update ids (one symbol, or every symbol).

        The skipped changes still happen in the book; clients just never see them, so a
        client that checks ``U == previous u + 1`` must notice and resync from a snapshot.
        """
        if n_updates < 1:
            raise ValueError("a gap skips at least one update")
        if symbol is None:
            self._gaps_for_all += n_updates
        else:
            self._pending_gaps[symbol] = self._pending_gaps.get(symbol, 0) + n_updates

    def take_gap(self, symbol: str) -> int:
        """Updates the depth publisher must withhold next for ``symbol`` (consumes its share).

        A gap requested for every symbol is handed to each symbol once, on its own next take:
        one symbol taking it does not use it up for the others. The publisher asks for every
        symbol at every flush, so a request reaches all of them at the next flush.
        """
        taken = self._gaps_for_all_taken.get(symbol, 0)
        self._gaps_for_all_taken[symbol] = self._gaps_for_all
        return self._pending_gaps.pop(symbol, 0) + self._gaps_for_all - taken

    def stall(self, seconds: float | None = None) -> None:
        """Stop sending WebSocket data but keep connections open, for ``seconds`` or until unstall()."""
        self._stall_until = math.inf if seconds is None else self._clock.monotonic() + seconds
        self._resumed.clear()

    def unstall(self) -> None:
        """Resume sending; data held during the stall is delivered in order."""
        self._stall_until = None
        self._resumed.set()

    @property
    def stalled(self) -> bool:
        return self._stall_remaining() > 0

    async def wait_unstalled(self) -> None:
        """Return once WebSocket data may flow (immediately when not stalled)."""
        while (remaining := self._stall_remaining()) > 0:
            timeout = None if math.isinf(remaining) else remaining
            try:
                await asyncio.wait_for(self._resumed.wait(), timeout)
            except TimeoutError:
                continue

    def _stall_remaining(self) -> float:
        if self._stall_until is None:
            return 0.0
        remaining = self._stall_until - self._clock.monotonic()
        if remaining <= 0:
            self.unstall()
            return 0.0
        return remaining

    # --- REST faults ------------------------------------------------------------------

    def force_429(self, seconds: float) -> None:
        """Answer every REST call with 429 (and ``Retry-After``) for ``seconds``."""
        self._forced_429_until = self._clock.monotonic() + seconds

    def forced_429_remaining(self) -> float:
        """Seconds left of a forced 429 period (0 when none)."""
        return max(0.0, self._forced_429_until - self._clock.monotonic())

    def decide_rest_failure(self, mutating: bool) -> RestFailure | None:
        """Whether this REST call fails, drawn from ``rest_fail_rate``.

        Only calls that change state (order placement, cancels) can fail *after* the engine
        acted; a read failing after the fact would be indistinguishable from before.
        """
        if self.rest_fail_rate <= 0 or self._rng.random() >= self.rest_fail_rate:
            return None
        after = mutating and self._rng.random() < self.rest_fail_after_share
        return RestFailure(self.rest_fail_mode, after)
