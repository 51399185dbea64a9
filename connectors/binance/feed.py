"""Native Binance Spot market-data feed: diff depth and trades for many symbols on one socket.

One combined-stream connection (``/stream?streams=berausdt@depth@100ms/berausdt@trade/...``)
carries every symbol. Each symbol's book is rebuilt from a REST snapshot and the buffered
diff events by ``DepthSync`` (Binance's ``U``/``u`` rules). A gap, a reconnect or a snapshot
that cannot be bridged marks the book RESYNCING and fetches a new snapshot; a symbol silent
beyond ``stale_after_s`` is marked STALE until the next in-sequence update arrives.

Hot path (one frame): ``orjson.loads``, a dict lookup of the symbol, the sequence check and
``L2Book.apply_delta`` on the level lists exactly as orjson built them (its compiled loop
converts the price strings), then ``on_book``. No logging, no per-level objects of our own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from connectors.backoff import Backoff
from connectors.binance.depth_sync import DepthSync, SyncOutcome
from connectors.feed import (
    BookCallback,
    FeedCallbacks,
    TradeCallback,
    ensure_symbols,
    mark_stale_books,
    set_health,
    wire_symbol,
)
from strategies.book import L2Book
from strategies.clock import Clock, SystemClock
from strategies.types import Side, SyncState, Trade

log = structlog.get_logger(__name__)

_loads = orjson.loads
_IN_SYNC = SyncState.IN_SYNC
_APPLIED = SyncOutcome.APPLIED
_GAP = SyncOutcome.GAP


class SnapshotError(Exception):
    """A REST depth snapshot could not be fetched or parsed; ``retry_after_s`` if the venue said."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class BinanceFeedConfig:
    """Tuning of the native feed; defaults suit Binance Spot."""

    depth_stream: str = "depth@100ms"  # or "depth" (1000 ms)
    # "websockets" (default) or "aiohttp": aiohttp's C frame reader is about twice as fast per
    # frame as websockets' pure-Python one (bench/feed_throughput.py measures both).
    transport: Literal["websockets", "aiohttp"] = "websockets"
    trades: bool = True
    snapshot_limit: int = 1000
    max_buffer: int = 10_000  # diff events kept per symbol while waiting for a snapshot
    ping_interval_s: float | None = 10.0  # protocol pings: a dead TCP connection is noticed
    ping_timeout_s: float | None = 10.0
    open_timeout_s: float = 10.0
    rest_timeout_s: float = 10.0
    reconnect_silent_s: float | None = None  # reconnect when the whole socket is silent this long
    watchdog_interval_s: float | None = None  # default: a quarter of stale_after_s, at most 1 s


@dataclass(slots=True)
class FeedStats:
    """Counters for status output and tests."""

    applied: int = 0
    gaps: int = 0
    snapshots: int = 0
    snapshot_failures: int = 0
    connects: int = 0
    disconnects: int = 0
    bad_frames: int = 0
    trades: int = 0


@dataclass(slots=True)
class _Connection:
    """What belongs to one socket's lifetime (cancelled together on disconnect)."""

    close: Callable[[], Awaitable[object]]
    snapshot_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)


class BinanceFeed:
    """Binance Spot depth + trade streams for one venue, kept in ``books`` (symbol -> L2Book)."""

    def __init__(
        self,
        venue: str,
        symbols: Iterable[str],
        ws_url: str,
        rest_url: str,
        *,
        clock: Clock | None = None,
        stale_after_s: float = 5.0,
        on_book: BookCallback | None = None,
        on_trade: TradeCallback | None = None,
        on_health: BookCallback | None = None,
        config: BinanceFeedConfig | None = None,
        backoff: Backoff | None = None,
        max_depth: int | None = None,
    ) -> None:
        """``ws_url`` is the stream base (``wss://stream.binance.com:9443``; a trailing ``/ws`` or
        ``/stream`` is accepted), ``rest_url`` the REST base including ``/api/v3``."""
        self.venue = venue
        self.symbols = ensure_symbols(symbols)
        self.ws_url = ws_url
        self.rest_url = rest_url.rstrip("/")
        self.clock: Clock = clock or SystemClock()
        self.stale_after_s = stale_after_s
        defaults = FeedCallbacks()
        self.on_book: BookCallback = on_book or defaults.on_book
        self.on_trade: TradeCallback = on_trade or defaults.on_trade
        self.on_health: BookCallback = on_health or defaults.on_health
        self.config = config or BinanceFeedConfig()
        self.backoff = backoff or Backoff()
        self.stats = FeedStats()
        self.books: dict[str, L2Book] = {s: L2Book(venue, s, max_depth=max_depth) for s in self.symbols}
        self._syncs = {s: DepthSync(b, self.config.max_buffer) for s, b in self.books.items()}
        self._by_wire = {wire_symbol(s): s for s in self.symbols}
        self._syncs_by_wire = {wire_symbol(s): sync for s, sync in self._syncs.items()}
        # Bound once: the hot path asks it for every frame. The real clock's time() is
        # time.time(), so with it the frame skips one Python call.
        self._now: Callable[[], float] = time.time if type(self.clock) is SystemClock else self.clock.time
        self._last_message: dict[str, float] = {}
        self._last_frame = 0.0
        self._session: aiohttp.ClientSession | None = None  # REST snapshots
        self._ws_session: aiohttp.ClientSession | None = None  # the aiohttp transport
        self._conn: _Connection | None = None
        self._connected = asyncio.Event()
        self._closed = False

    # ------------------------------------------------------------------ public

    @property
    def stream_url(self) -> str:
        """The combined-stream URL carrying every symbol's depth (and trade) stream."""
        base = self.ws_url.rstrip("/")
        for suffix in ("/stream", "/ws"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        streams: list[str] = []
        for symbol in self.symbols:
            wire = wire_symbol(symbol).lower()
            streams.append(f"{wire}@{self.config.depth_stream}")
            if self.config.trades:
                streams.append(f"{wire}@trade")
        return f"{base}/stream?streams={'/'.join(streams)}"

    async def wait_connected(self) -> None:
        """Return once a socket is open (tests and start-up ordering)."""
        await self._connected.wait()

    async def run(self) -> None:
        """Stream until cancelled or closed, reconnecting with backoff."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.rest_timeout_s)
            )
        watchdog = asyncio.create_task(self._watchdog(), name=f"feed-watchdog-{self.venue}")
        self._closed = False
        try:
            while not self._closed:
                reason = await self._stream_once()
                self._on_disconnect(reason)
                if self._closed:
                    break
                delay = self.backoff.next_delay(self.clock.monotonic())
                log.info("feed_reconnect_wait", venue=self.venue, reason=reason, delay_s=round(delay, 3))
                await asyncio.sleep(delay)
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            self._on_disconnect("feed stopped")

    async def close(self) -> None:
        """Close the socket and the REST session; books end DISCONNECTED and ``run`` returns."""
        self._closed = True
        conn = self._conn
        if conn is not None:
            await conn.close()
        self._on_disconnect("feed closed")
        for session in (self._session, self._ws_session):
            if session is not None:
                await session.close()
        self._session = self._ws_session = None

    async def reconnect(self) -> None:
        """Drop the current socket; ``run`` reconnects and resyncs every symbol."""
        conn = self._conn
        if conn is not None:
            await conn.close()

    def check_staleness(self, now: float | None = None) -> list[L2Book]:
        """Mark silent IN_SYNC books STALE (the watchdog calls this); returns those that turned."""
        when = self.clock.time() if now is None else now
        return mark_stale_books(
            self.books.values(), self._last_message, when, self.stale_after_s, self.on_health
        )

    # ------------------------------------------------------------------ connection

    async def _stream_once(self) -> str:
        """One connection's life; returns why it ended."""
        if self.config.transport == "aiohttp":
            return await self._stream_once_aiohttp()
        url = self.stream_url
        cfg = self.config
        try:
            async with connect(
                url,
                ping_interval=cfg.ping_interval_s,
                ping_timeout=cfg.ping_timeout_s,
                open_timeout=cfg.open_timeout_s,
                max_size=None,  # depth frames of many symbols can be large; the venue is trusted
                compression=None,  # Binance does not compress; skipping negotiation saves CPU
            ) as ws:
                self._on_connect(ws.close)
                await self._receive(ws)
        except ConnectionClosed as exc:
            return f"connection closed: {exc}"
        except (InvalidHandshake, InvalidURI) as exc:
            return f"handshake failed: {exc}"
        except (OSError, TimeoutError) as exc:
            return f"connect failed: {exc!r}"
        return "connection ended"

    async def _stream_once_aiohttp(self) -> str:
        cfg = self.config
        if self._ws_session is None:
            self._ws_session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=cfg.open_timeout_s)
            )
        try:
            async with self._ws_session.ws_connect(
                self.stream_url,
                heartbeat=cfg.ping_interval_s,  # pings; no pong within half of it closes the socket
                autoping=True,
                max_msg_size=0,
                compress=0,
            ) as ws:
                self._on_connect(ws.close)
                return await self._receive_aiohttp(ws)
        except aiohttp.WSServerHandshakeError as exc:
            return f"handshake failed: {exc}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return f"connect failed: {exc!r}"

    def _on_connect(self, close: Callable[[], Awaitable[object]]) -> None:
        now = self.clock.time()
        self.stats.connects += 1
        self.backoff.connected(self.clock.monotonic())
        self._conn = _Connection(close)
        self._last_frame = now
        self._connected.set()
        log.info("feed_connected", venue=self.venue, symbols=len(self.symbols))
        for symbol, sync in self._syncs.items():
            sync.reset()
            set_health(sync.book, SyncState.RESYNCING, "connected: awaiting snapshot", self.on_health)
            self._request_snapshot(symbol)

    def _on_disconnect(self, reason: str) -> None:
        conn = self._conn
        self._conn = None
        self._connected.clear()
        if conn is not None:
            self.stats.disconnects += 1
            for task in conn.snapshot_tasks.values():
                task.cancel()
            log.warning("feed_disconnected", venue=self.venue, reason=reason)
        for sync in self._syncs.values():
            sync.reset()
            set_health(sync.book, SyncState.DISCONNECTED, reason, self.on_health, count_resync=True)

    async def _receive(self, ws: ClientConnection) -> None:
        recv = ws.recv
        handle = self._handle_frame
        while True:
            frame = await recv(decode=False)
            try:
                handle(frame)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
                self._bad_frame(exc)

    async def _receive_aiohttp(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        receive = ws.receive
        handle = self._handle_frame
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        while True:
            msg = await receive()
            if msg.type is not text and msg.type is not binary:
                return f"connection closed: {msg.type.name} {msg.extra or ''}".strip()
            try:
                handle(msg.data)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
                self._bad_frame(exc)

    def _bad_frame(self, exc: Exception) -> None:
        # A malformed frame is the venue's bug, not a reason to drop the socket.
        self.stats.bad_frames += 1
        if self.stats.bad_frames <= 10 or self.stats.bad_frames % 1000 == 0:
            log.warning("feed_bad_frame", venue=self.venue, error=repr(exc), count=self.stats.bad_frames)

    # ------------------------------------------------------------------ hot path

    def _handle_frame(self, frame: bytes | str) -> None:
        # One method for the whole depth path: on this path a Python call costs as much as a level.
        msg = _loads(frame)
        # Subscripts rather than .get(): a try costs nothing until it catches, a method call does.
        try:
            data = msg["data"]
            event = data["e"]
        except (KeyError, TypeError):
            return  # subscription acks and other control replies
        if event != "depthUpdate":
            if event == "trade":
                self._on_trade(data)
            return
        sync = self._syncs_by_wire.get(data["s"])
        if sync is None:
            return
        now = self._now()
        self._last_frame = now
        book = sync.book
        self._last_message[book.symbol] = now
        outcome = sync.on_event(data["U"], data["u"], data["b"], data["a"], now)
        if outcome is _APPLIED:
            self.stats.applied += 1
            health = book.health
            health.last_update_ts = now
            if health.state is not _IN_SYNC:
                set_health(book, _IN_SYNC, "", self.on_health)  # stale -> flowing again
            self.on_book(book)
        elif outcome is _GAP:
            self._on_gap(sync)

    def _on_gap(self, sync: DepthSync) -> None:
        book = sync.book
        self.stats.gaps += 1
        log.warning("feed_sequence_gap", venue=self.venue, symbol=book.symbol, reason=sync.gap_reason)
        set_health(book, SyncState.RESYNCING, sync.gap_reason, self.on_health, count_resync=True)
        self._request_snapshot(book.symbol)

    def _on_trade(self, data: dict[str, Any]) -> None:
        symbol = self._by_wire.get(data["s"])
        if symbol is None:
            return
        self._last_frame = self.clock.time()
        self.stats.trades += 1
        self.on_trade(
            Trade(
                venue=self.venue,
                symbol=symbol,
                price=float(data["p"]),
                qty=float(data["q"]),
                # "m": the buyer is the maker, so the seller took liquidity
                taker_side=Side.SELL if data.get("m") else Side.BUY,
                ts=float(data.get("T") or data.get("E") or 0) / 1000.0,
                trade_id=int(data.get("t") or 0),
            )
        )

    # ------------------------------------------------------------------ snapshots

    def _request_snapshot(self, symbol: str) -> None:
        conn = self._conn
        if conn is None:
            return
        task = conn.snapshot_tasks.get(symbol)
        if task is not None and not task.done():
            return
        conn.snapshot_tasks[symbol] = asyncio.create_task(
            self._snapshot_until_synced(symbol), name=f"snapshot-{self.venue}-{symbol}"
        )

    async def _snapshot_until_synced(self, symbol: str) -> None:
        sync = self._syncs[symbol]
        book = sync.book
        retry = Backoff(base_s=0.05, cap_s=5.0)
        while not sync.synced:
            try:
                last_update_id, bids, asks = await self.fetch_snapshot(symbol)
            except SnapshotError as exc:
                self.stats.snapshot_failures += 1
                delay = max(retry.next_delay(self.clock.monotonic()), exc.retry_after_s or 0.0)
                log.warning("feed_snapshot_failed", venue=self.venue, symbol=symbol, error=str(exc))
                set_health(book, SyncState.RESYNCING, f"snapshot failed: {exc}", self.on_health)
                await asyncio.sleep(delay)
                continue
            self.stats.snapshots += 1
            now = self.clock.time()
            outcome = sync.on_snapshot(last_update_id, bids, asks, now)
            if outcome is SyncOutcome.SYNCED:
                book.health.last_update_ts = now
                self._last_message[symbol] = now
                set_health(book, _IN_SYNC, "", self.on_health)
                self.on_book(book)
                return
            set_health(book, SyncState.RESYNCING, sync.gap_reason, self.on_health)
            if outcome is SyncOutcome.SNAPSHOT_TOO_OLD:
                # The stream runs ahead of the REST cache; give it a moment.
                await asyncio.sleep(retry.next_delay(self.clock.monotonic()))

    async def fetch_snapshot(self, symbol: str) -> tuple[int, list[list[str]], list[list[str]]]:
        """``GET /depth``: (lastUpdateId, bids, asks) with levels as the venue's strings."""
        session = self._session
        if session is None:
            raise SnapshotError("feed is not running")
        params = {"symbol": wire_symbol(symbol), "limit": str(self.config.snapshot_limit)}
        try:
            async with session.get(f"{self.rest_url}/depth", params=params) as response:
                body = await response.read()
                if response.status != 200:
                    retry_after = response.headers.get("Retry-After")
                    raise SnapshotError(
                        f"HTTP {response.status}: {body[:200]!r}",
                        float(retry_after) if retry_after and retry_after.isdigit() else None,
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SnapshotError(repr(exc)) from exc
        try:
            payload = orjson.loads(body)
            return int(payload["lastUpdateId"]), payload["bids"], payload["asks"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"bad depth payload: {exc!r}") from exc

    # ------------------------------------------------------------------ watchdog

    async def _watchdog(self) -> None:
        interval = self.config.watchdog_interval_s or min(1.0, max(0.05, self.stale_after_s / 4))
        silent_limit = self.config.reconnect_silent_s
        while True:
            await asyncio.sleep(interval)  # a cadence, not a synchronisation
            self.check_staleness()
            conn = self._conn
            if (
                silent_limit is not None
                and conn is not None
                and self.clock.time() - self._last_frame > silent_limit
            ):
                log.warning("feed_silent_reconnect", venue=self.venue, silent_s=silent_limit)
                await conn.close()
