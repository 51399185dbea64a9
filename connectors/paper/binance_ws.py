"""Binance Spot WebSocket streams over a paper matching engine.

Endpoints (all on the venue's port):

- ``/ws`` and ``/ws/<stream>[/<stream>...]``: raw streams; ``/ws/<listenKey>``: a user-data
  stream. Payloads are the bare event objects.
- ``/stream?streams=a/b`` and ``/stream/<anything>``: combined streams, each payload wrapped
  as ``{"stream": name, "data": event}``. ccxt pro connects to ``<ws url>/<index>``, so with
  its Spot URL set to ``.../stream`` it lands here.
- Both accept Binance's ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS`` JSON methods.
- ``/ws-api/v3``: the WebSocket API's user-data subscription
  (``userDataStream.subscribe.signature``), which is what ccxt pro 4.5 uses for Spot
  ``watch_orders``; events arrive as ``{"subscriptionId": n, "event": {...}}``.

Streams: ``<symbol>@depth`` (1 s batches) and ``<symbol>@depth@100ms`` diff events with
Binance's ``U``/``u`` sequencing, ``<symbol>@trade``, ``<symbol>@bookTicker``; user data
``executionReport`` and ``outboundAccountPosition``.

Each connection has its own outgoing queue drained by one writer task, so engine listeners
(synchronous) never block, and a stall fault holds data without closing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from aiohttp import WSMsgType, web

from connectors.paper.auth import BinanceError, KeyRing
from connectors.paper.binance_rest import ListenKeys, fmt, ms, wire_side
from connectors.paper.engine import Balance, BookChange, Execution, MatchingEngine, Order, OrderStatus
from connectors.paper.faults import FaultKnobs
from strategies.clock import Clock
from strategies.types import Side

log = structlog.get_logger(__name__)

# A client this far behind is cut off, as Binance does with slow consumers.
MAX_QUEUED_MESSAGES = 50_000
HEARTBEAT_S = 20.0

_EXECUTION_TYPE = {
    OrderStatus.NEW: "NEW",
    OrderStatus.PARTIALLY_FILLED: "NEW",
    OrderStatus.FILLED: "NEW",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.REJECTED: "REJECTED",
    OrderStatus.EXPIRED: "EXPIRED",
}


@dataclass(frozen=True, slots=True)
class DepthSpeed:
    """One diff-depth stream flavour: its name suffix and batching interval."""

    suffix: str  # "depth" or "depth@100ms"
    interval_s: float


@dataclass(eq=False)
class Connection:
    """One client WebSocket and what it is subscribed to."""

    ws: web.WebSocketResponse
    combined: bool
    faults: FaultKnobs
    streams: set[str] = field(default_factory=set)
    # account -> ws-api subscription id (None for a listen-key connection)
    user: dict[str, int | None] = field(default_factory=dict)
    listen_key: str | None = None
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    writer: asyncio.Task[None] | None = None
    overflowed: bool = False

    def send(self, text: str) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= MAX_QUEUED_MESSAGES:
            # Binance disconnects a consumer that cannot keep up; so do we.
            log.warning("paper_ws_slow_consumer_dropped", queued=self.queue.qsize())
            self.overflowed = True
            if self.writer is not None:
                self.writer.cancel()
            asyncio.get_running_loop().create_task(self.ws.close(code=1008, message=b"slow consumer"))
            return
        self.queue.put_nowait(text)

    async def write_loop(self) -> None:
        """Deliver queued messages in order, holding them while the venue is stalled."""
        while True:
            text = await self.queue.get()
            await self.faults.wait_unstalled()
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except ConnectionError:
                return


class StreamHub:
    """The WebSocket side of one venue: an engine listener that fans events out to clients."""

    def __init__(
        self,
        engine: MatchingEngine,
        faults: FaultKnobs,
        keys: KeyRing,
        listen_keys: ListenKeys,
        clock: Clock,
        depth_speeds: Iterable[DepthSpeed],
    ) -> None:
        self.engine = engine
        self.faults = faults
        self.keys = keys
        self.listen_keys = listen_keys
        self.clock = clock
        self.depth_speeds = list(depth_speeds)
        self.connections: set[Connection] = set()
        self._subscribers: dict[str, set[Connection]] = {}
        self._user: dict[str, set[Connection]] = {}
        self._pending: dict[str, dict[str, list[BookChange]]] = {s.suffix: {} for s in self.depth_speeds}
        self._gap_left: dict[tuple[str, str], int] = {}
        self._last_book_ticker: dict[str, tuple[Any, ...]] = {}
        self._next_subscription_id = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.depth_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._subscribed: dict[str, asyncio.Event] = {}
        faults.on_drop(self.drop_all)
        listen_keys.closed_hooks.append(self._on_listen_key_closed)
        engine.listeners.append(self)

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/ws", self.handle_raw),
            web.get("/ws/{path:.+}", self.handle_raw),
            web.get("/stream", self.handle_combined),
            web.get("/stream/{path:.*}", self.handle_combined),
            web.get("/ws-api/v3", self.handle_ws_api),
        ]

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        for speed in self.depth_speeds:
            self._tasks.append(
                asyncio.create_task(self._flush_loop(speed), name=f"paper-depth-{speed.suffix}")
            )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.drop_all()
        with contextlib.suppress(ValueError):
            self.engine.listeners.remove(self)

    async def drop_all(self) -> None:
        """Close every connection (the drop fault, and shutdown)."""
        conns = list(self.connections)
        for conn in conns:
            if conn.writer is not None:
                conn.writer.cancel()
        await asyncio.gather(*(self._close(conn) for conn in conns), return_exceptions=True)

    @staticmethod
    async def _close(conn: Connection) -> None:
        # Going away, like a venue restarting a gateway; don't wait long for the close reply.
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(conn.ws.close(code=1001, message=b"paper venue drop"), 2.0)

    # --- handlers -----------------------------------------------------------------------

    async def handle_raw(self, request: web.Request) -> web.WebSocketResponse:
        path = request.match_info.get("path", "")
        account: str | None = None
        listen_key: str | None = None
        streams: list[str] = []
        if path:
            account = self.listen_keys.account(path)
            if account is not None:
                listen_key = path
            else:
                streams = [s for s in path.split("/") if s]
        return await self._serve(
            request, combined=False, streams=streams, account=account, listen_key=listen_key
        )

    async def handle_combined(self, request: web.Request) -> web.WebSocketResponse:
        raw = request.query.get("streams", "")
        streams = [s for s in raw.split("/") if s]
        return await self._serve(request, combined=True, streams=streams, account=None, listen_key=None)

    async def _serve(
        self,
        request: web.Request,
        combined: bool,
        streams: list[str],
        account: str | None,
        listen_key: str | None,
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, timeout=2.0)
        await ws.prepare(request)
        conn = Connection(ws, combined, self.faults, listen_key=listen_key)
        self._open(conn)
        for name in streams:
            self._subscribe(conn, name)
        if account is not None:
            self._subscribe_user(conn, account, None)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_stream_request(conn, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._forget(conn)
        return ws

    async def handle_ws_api(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, timeout=2.0)
        await ws.prepare(request)
        conn = Connection(ws, combined=False, faults=self.faults)
        self._open(conn)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_api_request(conn, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._forget(conn)
        return ws

    def _open(self, conn: Connection) -> None:
        self.connections.add(conn)
        conn.writer = asyncio.create_task(conn.write_loop(), name="paper-ws-writer")

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for name in conn.streams:
            self._subscribers.get(name, set()).discard(conn)
        for account in conn.user:
            self._user.get(account, set()).discard(conn)
        if conn.writer is not None:
            conn.writer.cancel()

    # --- stream subscriptions -----------------------------------------------------------

    def _on_stream_request(self, conn: Connection, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.send(_dumps({"error": {"code": 3, "msg": "Invalid JSON: expected value"}, "id": None}))
            return
        if not isinstance(request, dict):
            conn.send(_dumps({"error": {"code": 3, "msg": "Invalid JSON: expected object"}, "id": None}))
            return
        req_id = request.get("id")
        method = request.get("method")
        params = request.get("params") or []
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                conn.send(_dumps({"error": {"code": 2, "msg": "Invalid request: params"}, "id": req_id}))
                return
            unknown = [p for p in params if not self._known_stream(p)]
            if unknown:
                msg = f"Invalid request: unknown stream {unknown[0]}"
                conn.send(_dumps({"error": {"code": 2, "msg": msg}, "id": req_id}))
                return
            for name in params:
                if method == "SUBSCRIBE":
                    self._subscribe(conn, name)
                else:
                    self._unsubscribe(conn, name)
            conn.send(_dumps({"result": None, "id": req_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            conn.send(_dumps({"result": sorted(conn.streams), "id": req_id}))
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            conn.send(_dumps({"result": None if method == "SET_PROPERTY" else False, "id": req_id}))
        else:
            conn.send(
                _dumps({"error": {"code": 2, "msg": f"Invalid request: method {method}"}, "id": req_id})
            )

    def _known_stream(self, name: str) -> bool:
        symbol, _, kind = name.partition("@")
        if symbol.upper() not in self.engine.by_wire:
            return False
        kinds = {"trade", "bookTicker", "depth@1000ms"} | {s.suffix for s in self.depth_speeds}
        return kind in kinds

    def _subscribe(self, conn: Connection, name: str) -> None:
        name = _canonical(name)
        conn.streams.add(name)
        self._subscribers.setdefault(name, set()).add(conn)
        self._subscribed_event(name).set()

    def _unsubscribe(self, conn: Connection, name: str) -> None:
        name = _canonical(name)
        conn.streams.discard(name)
        self._subscribers.get(name, set()).discard(conn)

    def _subscribe_user(self, conn: Connection, account: str, subscription_id: int | None) -> None:
        conn.user[account] = subscription_id
        self._user.setdefault(account, set()).add(conn)
        self._subscribed_event(f"user:{account}").set()

    def _subscribed_event(self, key: str) -> asyncio.Event:
        event = self._subscribed.get(key)
        if event is None:
            event = self._subscribed[key] = asyncio.Event()
        return event

    async def wait_for_subscriber(self, stream: str) -> None:
        """Return once some connection has subscribed to ``stream`` (e.g. ``berausdt@trade``)."""
        await self._subscribed_event(_canonical(stream)).wait()

    async def wait_for_user_stream(self, account: str) -> None:
        """Return once some connection receives ``account``'s user data (listen key or WS API)."""
        await self._subscribed_event(f"user:{account}").wait()

    def _on_listen_key_closed(self, listen_key: str) -> None:
        for conn in list(self.connections):
            if conn.listen_key == listen_key:
                conn.send(
                    _dumps({"e": "listenKeyExpired", "E": ms(self.clock.time()), "listenKey": listen_key})
                )
                asyncio.get_running_loop().create_task(self._close(conn))

    # --- WebSocket API ------------------------------------------------------------------

    def _on_api_request(self, conn: Connection, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.send(_dumps({"id": None, "status": 400, "error": {"code": -1000, "msg": "Invalid JSON."}}))
            return
        req_id = request.get("id") if isinstance(request, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        params = request.get("params") or {} if isinstance(request, dict) else {}
        now = ms(self.clock.time())
        try:
            if method == "ping":
                result: Any = {}
            elif method == "time":
                result = {"serverTime": now}
            elif method == "userDataStream.subscribe.signature":
                credential = self.keys.verify_ws_params({k: str(v) for k, v in params.items()}, now)
                sub_id = self._next_subscription_id
                self._next_subscription_id += 1
                self._subscribe_user(conn, credential.account, sub_id)
                result = {"subscriptionId": sub_id}
            elif method == "userDataStream.unsubscribe":
                wanted = params.get("subscriptionId")
                for account, sub in list(conn.user.items()):
                    if wanted is None or sub == wanted:
                        del conn.user[account]
                        self._user.get(account, set()).discard(conn)
                result = {}
            elif method == "session.subscriptions":
                result = [{"subscriptionId": sub} for sub in conn.user.values()]
            else:
                raise BinanceError(
                    400, -1000, f"Unknown method {method!r} on the paper venue's WebSocket API."
                )
        except BinanceError as err:
            conn.send(_dumps({"id": req_id, "status": err.status, "error": err.body()}))
            return
        conn.send(_dumps({"id": req_id, "status": 200, "result": result, "rateLimits": []}))

    # --- engine listener ----------------------------------------------------------------

    def on_book_change(self, change: BookChange) -> None:
        for pending in self._pending.values():
            pending.setdefault(change.symbol, []).append(change)
        wire = self.engine.symbols[change.symbol].wire
        stream = f"{wire.lower()}@bookTicker"
        if self._subscribers.get(stream):
            self._publish_book_ticker(change, wire, stream)

    def _publish_book_ticker(self, change: BookChange, wire: str, stream: str) -> None:
        bids, asks, _ = self.engine.depth(change.symbol, 1)
        top = (bids[0] if bids else (None, None)) + (asks[0] if asks else (None, None))
        if self._last_book_ticker.get(change.symbol) == top:
            return
        self._last_book_ticker[change.symbol] = top
        event = {
            "u": change.update_id,
            "s": wire,
            "b": fmt(top[0]),
            "B": fmt(top[1]),
            "a": fmt(top[2]),
            "A": fmt(top[3]),
        }
        self._publish(stream, event)

    def on_trade(self, execution: Execution) -> None:
        wire = self.engine.symbols[execution.symbol].wire
        stream = f"{wire.lower()}@trade"
        if not self._subscribers.get(stream):
            return
        event = {
            "e": "trade",
            "E": ms(self.clock.time()),
            "s": wire,
            "t": execution.trade_id,
            "p": fmt(execution.price),
            "q": fmt(execution.qty),
            "T": ms(execution.ts),
            "m": execution.taker_side is Side.SELL,  # the buyer is the maker
            "M": True,
        }
        self._publish(stream, event)

    def on_order_update(self, order: Order, execution: Execution | None) -> None:
        if not self._user.get(order.account):
            return
        self._publish_user(order.account, execution_report(order, execution, self.engine, self.clock))

    def on_balance_update(self, account: str, assets: dict[str, Balance]) -> None:
        if not self._user.get(account):
            return
        now = ms(self.clock.time())
        event = {
            "e": "outboundAccountPosition",
            "E": now,
            "u": now,
            "B": [{"a": asset, "f": fmt(b.free), "l": fmt(b.locked)} for asset, b in assets.items()],
        }
        self._publish_user(account, event)

    # --- fan-out ------------------------------------------------------------------------

    def _publish(self, stream: str, event: dict[str, Any]) -> None:
        conns = self._subscribers.get(stream)
        if not conns:
            return
        raw: str | None = None
        wrapped: str | None = None
        for conn in conns:
            if conn.combined:
                if wrapped is None:
                    wrapped = _dumps({"stream": stream, "data": event})
                conn.send(wrapped)
            else:
                if raw is None:
                    raw = _dumps(event)
                conn.send(raw)

    def _publish_user(self, account: str, event: dict[str, Any]) -> None:
        for conn in self._user.get(account, ()):
            sub_id = conn.user.get(account)
            if sub_id is not None:
                conn.send(_dumps({"subscriptionId": sub_id, "event": event}))
            elif conn.combined and conn.listen_key is not None:
                conn.send(_dumps({"stream": conn.listen_key, "data": event}))
            else:
                conn.send(_dumps(event))

    async def _flush_loop(self, speed: DepthSpeed) -> None:
        while True:
            await asyncio.sleep(speed.interval_s)
            self.flush_depth(speed)

    def flush_depth(self, speed: DepthSpeed) -> None:
        """Turn the engine's book changes since the last flush into one diff event per symbol."""
        pending = self._pending[speed.suffix]
        self._pending[speed.suffix] = {}
        for symbol in self.engine.symbols:
            requested = self.faults.take_gap(symbol)
            if requested:
                for other in self.depth_speeds:
                    key = (other.suffix, symbol)
                    self._gap_left[key] = self._gap_left.get(key, 0) + requested
        now = ms(self.clock.time())
        for symbol, changes in pending.items():
            gap = self._gap_left.get((speed.suffix, symbol), 0)
            if gap:
                # The gap fault: these updates happened but their ids never reach a client.
                skipped = min(gap, len(changes))
                changes = changes[skipped:]
                self._gap_left[(speed.suffix, symbol)] = gap - skipped
            if not changes:
                continue
            wire = self.engine.symbols[symbol].wire
            stream = f"{wire.lower()}@{speed.suffix}"
            event = depth_event(wire, changes, now)
            for listener in self.depth_listeners:
                listener(stream, event)
            self._publish(stream, event)


def depth_event(wire: str, changes: list[BookChange], event_ms: int) -> dict[str, Any]:
    """Binance's ``depthUpdate``: ``U`` first and ``u`` last update id, final qty per level."""
    levels: dict[tuple[Side, Any], Any] = {}
    for change in changes:
        levels[(change.side, change.price)] = change.qty
    bids = [[fmt(price), fmt(qty)] for (side, price), qty in levels.items() if side is Side.BUY]
    asks = [[fmt(price), fmt(qty)] for (side, price), qty in levels.items() if side is Side.SELL]
    return {
        "e": "depthUpdate",
        "E": event_ms,
        "s": wire,
        "U": changes[0].update_id,
        "u": changes[-1].update_id,
        "b": bids,
        "a": asks,
    }


def execution_report(
    order: Order, execution: Execution | None, engine: MatchingEngine, clock: Clock
) -> dict[str, Any]:
    """Binance's ``executionReport`` for one order change (``x`` = TRADE when ``execution``)."""
    spec = engine.symbols[order.symbol]
    is_maker = execution is not None and execution.maker_order.order_id == order.order_id
    if execution is None:
        exec_type = _EXECUTION_TYPE[order.status]
        last_qty = last_price = commission = None
        commission_asset: str | None = None
        trade_id = -1
    else:
        exec_type = "TRADE"
        last_qty, last_price = execution.qty, execution.price
        commission = execution.maker_fee if is_maker else execution.taker_fee
        commission_asset = execution.maker_fee_asset if is_maker else execution.taker_fee_asset
        trade_id = execution.trade_id
    canceled = order.status is OrderStatus.CANCELED
    return {
        "e": "executionReport",
        "E": ms(clock.time()),
        "s": spec.wire,
        "c": order.client_order_id,
        "S": wire_side(order.side),
        "o": order.type.value,
        "f": order.tif.value,
        "q": fmt(order.qty),
        "p": fmt(order.price),
        "P": fmt(None),
        "F": fmt(None),
        "g": -1,
        "C": order.client_order_id if canceled else "",
        "x": exec_type,
        "X": order.status.value,
        "r": "NONE",
        "i": order.order_id,
        "l": fmt(last_qty),
        "z": fmt(order.filled),
        "L": fmt(last_price),
        "n": fmt(commission),
        "N": commission_asset,
        "T": ms(order.updated_ts),
        "t": trade_id,
        "I": 0,
        "w": order.status.is_open,
        "m": is_maker,
        "M": False,
        "O": ms(order.created_ts),
        "Z": fmt(order.cum_quote),
        "Y": fmt(last_qty * last_price if last_qty is not None and last_price is not None else None),
        "Q": fmt(None),
        "W": ms(order.created_ts),
        "V": "NONE",
    }


def _canonical(name: str) -> str:
    # "@depth@1000ms" is Binance's explicit name for the default 1 s stream.
    symbol, _, kind = name.partition("@")
    if kind == "depth@1000ms":
        kind = "depth"
    return f"{symbol.lower()}@{kind}"


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()
