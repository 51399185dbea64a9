"""The paper exchange: one aiohttp server per venue (Binance REST + WebSocket), a shared
simulated market driving every venue's matching engine, and the fault schedule.

>>> async with PaperExchange.from_scenario(Path("config/paper/demo.yaml")) as px:
...     alpha = px.venues["alpha"]
...     exchange = ccxt.async_support.binance(ccxt_config(alpha))
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import structlog
from aiohttp import web

from connectors.paper.auth import ApiCredential, KeyRing
from connectors.paper.binance_rest import BinanceRestApi, ListenKeys
from connectors.paper.binance_ws import DepthSpeed, StreamHub
from connectors.paper.control import ControlApi
from connectors.paper.engine import MatchingEngine
from connectors.paper.faults import FaultKnobs
from connectors.paper.market import SimulatedMarket
from connectors.paper.scenario import Scenario, VenueSettings, load_scenario
from connectors.paper.weights import WeightLimiter
from strategies.clock import Clock, SystemClock

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"
_MAX_CATCH_UP_STEPS = 20


@dataclass(eq=False)
class PaperVenueHandle:
    """What a client needs to reach one venue, and the levers a test pulls on it.

    ``rest_url`` is ``http://127.0.0.1:PORT/api/v3``; ``ws_url`` is ``ws://127.0.0.1:PORT``
    (serving ``/ws``, ``/ws/<streams>``, ``/stream?streams=...`` and ``/ws-api/v3``). Both
    are empty until the exchange has started. ``account``, ``api_key`` and ``secret`` are
    the venue's first (demo) account.
    """

    name: str
    engine: MatchingEngine
    faults: FaultKnobs
    account: str
    api_key: str
    secret: str
    settings: VenueSettings
    hub: StreamHub
    rest: BinanceRestApi
    limiter: WeightLimiter
    rest_url: str = ""
    ws_url: str = ""
    port: int = 0
    credentials: list[ApiCredential] = field(default_factory=list)


class _VenueServer:
    """The aiohttp app and listening socket of one venue."""

    def __init__(self, handle: PaperVenueHandle, host: str, port: int, control: ControlApi) -> None:
        self.handle = handle
        self.host = host
        self.port = port
        app = web.Application()
        app.add_routes(handle.rest.routes())
        app.add_routes(handle.hub.routes())
        app.add_routes(control.routes())
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)

    async def start(self) -> int:
        await self.runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        site = web.SockSite(self.runner, sock)
        await site.start()
        port: int = sock.getsockname()[1]
        return port

    async def stop(self) -> None:
        await self.runner.cleanup()


class PaperExchange:
    """One or more paper venues, the simulated market behind them, and its step timer."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int = 0,
        base_port: int = 0,
        host: str = LOOPBACK,
        step_interval: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.base_port = base_port
        self.host = host
        self.step_interval = step_interval if step_interval is not None else scenario.step_interval_s
        self.clock: Clock = clock or SystemClock()
        self.market = SimulatedMarket(scenario.fair_values, seed, self.clock)
        # the market reads its fair-value params live: a multiplier rescales them in place
        self._base_vol = {p.asset: p.vol_per_sqrt_s for p in scenario.fair_values}
        self._vol_multipliers: dict[str, float] = {}
        self.venues: dict[str, PaperVenueHandle] = {}
        self._closing = asyncio.Event()
        self._servers: list[_VenueServer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._market_running = asyncio.Event()
        self._market_running.set()
        self._started = False
        self._step_debt = 0.0
        for index, settings in enumerate(scenario.venues):
            self.venues[settings.name] = self._build_venue(index, settings)

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario | Path | str,
        seed: int = 0,
        base_port: int = 0,
        host: str = LOOPBACK,
        step_interval: float | None = None,
    ) -> PaperExchange:
        """Build (not start) the exchange of a scenario model or YAML file."""
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(Path(scenario))
        return cls(scenario, seed=seed, base_port=base_port, host=host, step_interval=step_interval)

    def _build_venue(self, index: int, settings: VenueSettings) -> PaperVenueHandle:
        markets = self.scenario.venue_markets(settings)
        engine = MatchingEngine(
            [m.spec() for m in markets],
            self.clock,
            maker_fee=settings.maker_fee,
            taker_fee=settings.taker_fee,
        )
        for account in settings.accounts:
            for asset, amount in account.balances.items():
                if amount > 0:
                    engine.deposit(account.name, asset, amount)
        for market in markets:
            participants = settings.participants_by_symbol.get(market.symbol, settings.participants)
            self.market.attach(settings.name, engine, market.symbol, participants, settings.noise)
        credentials = [ApiCredential(a.api_key, a.secret, a.name) for a in settings.accounts]
        keys = KeyRing(credentials)
        faults = FaultKnobs(settings.faults, seed=self.seed * 1000 + index, clock=self.clock)
        limiter = WeightLimiter(settings.weight_limit_per_minute, self.clock)
        listen_keys = ListenKeys()
        rest = BinanceRestApi(engine, keys, limiter, faults, listen_keys, self.clock, self._closing)
        speeds = [
            DepthSpeed("depth", settings.streams.depth_interval_ms / 1000),
            DepthSpeed("depth@100ms", settings.streams.depth_fast_interval_ms / 1000),
        ]
        hub = StreamHub(engine, faults, keys, listen_keys, self.clock, speeds)
        demo = settings.accounts[0]
        return PaperVenueHandle(
            name=settings.name,
            engine=engine,
            faults=faults,
            account=demo.name,
            api_key=demo.api_key,
            secret=demo.secret,
            settings=settings,
            hub=hub,
            rest=rest,
            limiter=limiter,
            credentials=credentials,
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Seed the books, open every venue's port and start the market and fault timers."""
        if self._started:
            return
        self._started = True
        self.market.seed_books()
        for index, handle in enumerate(self.venues.values()):
            port = handle.settings.port
            if port is None:
                port = self.base_port + index if self.base_port else 0
            control = ControlApi(
                handle, self.pause_market, self.resume_market, lambda: self.market_paused,
                self.set_vol_multiplier, lambda: dict(self._vol_multipliers),
            )
            server = _VenueServer(handle, self.host, port, control)
            handle.port = await server.start()
            self._servers.append(server)
            handle.rest_url = f"http://{self.host}:{handle.port}/api/v3"
            handle.ws_url = f"ws://{self.host}:{handle.port}"
            handle.hub.start()
            self._tasks.extend(self._fault_schedule(handle))
            log.debug("paper_venue_started", venue=handle.name, rest=handle.rest_url, ws=handle.ws_url)
        self._tasks.append(asyncio.create_task(self._step_loop(), name="paper-market-steps"))

    async def stop(self) -> None:
        """Stop the timers, drop every connection and close the ports."""
        if not self._started:
            return
        self._started = False
        self._closing.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for handle in self.venues.values():
            await handle.hub.close()
        for server in self._servers:
            await server.stop()
        self._servers.clear()

    async def __aenter__(self) -> PaperExchange:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- the simulated market ---------------------------------------------------------------

    def pause_market(self) -> None:
        """Stop the simulated participants: books stay as they are (tests need a quiet book)."""
        self._market_running.clear()

    def resume_market(self) -> None:
        """Let the simulated participants act again."""
        self._market_running.set()

    @property
    def market_paused(self) -> bool:
        return not self._market_running.is_set()

    def set_vol_multiplier(self, asset: str, multiplier: float) -> None:
        """Scale ``asset``'s fair-value volatility to ``multiplier`` × the scenario's (a spike;
        1 restores it). Every venue sharing that fair value sees it. KeyError: no such asset."""
        if not multiplier > 0:
            raise ValueError(f"volatility multiplier must be > 0, not {multiplier}")
        base = self._base_vol[asset]
        for params in self.scenario.fair_values:
            if params.asset == asset:
                params.vol_per_sqrt_s = base * multiplier
        self._vol_multipliers[asset] = multiplier

    def advance(self, seconds: float) -> int:
        """Advance the simulated market by ``seconds`` in fixed steps of ``step_interval``.

        Returns the number of steps taken. Steps are always ``step_interval`` long, so the
        same seed and the same number of steps give the same order flow whatever the wall
        clock did; the timer calls this with real elapsed time, tests may call it directly.
        """
        self._step_debt += seconds
        steps = int(self._step_debt / self.step_interval)
        self._step_debt -= steps * self.step_interval
        for _ in range(steps):
            self.market.step(self.step_interval)
        return steps

    async def _step_loop(self) -> None:
        last = self.clock.monotonic()
        while True:
            await asyncio.sleep(self.step_interval)
            if not self._market_running.is_set():
                await self._market_running.wait()
                last = self.clock.monotonic()  # paused time does not pass for the market
                continue
            now = self.clock.monotonic()
            # Real elapsed time keeps the market at wall pace; after a long stall of the loop
            # the market skips ahead rather than replaying a burst of steps.
            elapsed = min(now - last, _MAX_CATCH_UP_STEPS * self.step_interval)
            last = now
            self.advance(max(0.0, elapsed))

    # --- scheduled faults -----------------------------------------------------------------

    def _fault_schedule(self, handle: PaperVenueHandle) -> list[asyncio.Task[None]]:
        s = handle.settings.faults
        faults = handle.faults
        tasks: list[asyncio.Task[None]] = []

        async def drop() -> None:
            await faults.drop_connections()

        async def gap() -> None:
            faults.gap_next_depth(s.gap_updates)

        async def stall() -> None:
            faults.stall(s.stall_s)

        async def force_429() -> None:
            faults.force_429(s.force_429_s)

        for every, action in (
            (s.drop_every_s, drop),
            (s.gap_every_s, gap),
            (s.stall_every_s, stall),
            (s.force_429_every_s, force_429),
        ):
            if every > 0:
                tasks.append(asyncio.create_task(_every(every, action), name=f"paper-fault-{handle.name}"))
        return tasks


async def _every(period: float, action: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(period)
        await action()
