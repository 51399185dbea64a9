"""Binance Spot REST (``/api/v3/...``) over a paper matching engine.

One :class:`BinanceRestApi` per venue. Every call goes through the same pipeline, in
Binance's order: forced 429 and request weight (``X-MBX-USED-WEIGHT-1M`` on every answer),
injected latency and failures, authentication (API key, HMAC signature, ``recvWindow``),
then the endpoint. Errors are answered with Binance's HTTP status, numeric code and message
text, because clients (ccxt) map exactly those to their exception types.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from aiohttp import web

from connectors.paper.auth import BinanceError, KeyRing
from connectors.paper.engine import (
    Execution,
    MatchingEngine,
    Order,
    OrderRejected,
    OrderType,
    RejectReason,
    SymbolSpec,
    TimeInForce,
)
from connectors.paper.faults import FaultKnobs, RestFailure
from connectors.paper.weights import WeightLimiter, request_weight
from strategies.clock import Clock
from strategies.types import Side

log = structlog.get_logger(__name__)

REST_PREFIX = "/api/v3/"
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
_ZERO8 = "0.00000000"
_MAX_LIMIT = 5000
_UNKNOWN_STATE = BinanceError(
    503,
    -1007,
    "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
)


def fmt(value: Decimal | None) -> str:
    """A decimal as Binance prints it: fixed point, eight places."""
    return _ZERO8 if value is None else f"{value:.8f}"


def ms(ts: float) -> int:
    """Seconds since the epoch to Binance's integer milliseconds."""
    return int(ts * 1000)


def wire_side(side: Side) -> str:
    return "BUY" if side is Side.BUY else "SELL"


class Security(enum.Enum):
    """What a call must carry, as in Binance's endpoint security types."""

    NONE = "NONE"
    API_KEY = "USER_STREAM"  # X-MBX-APIKEY only
    SIGNED = "SIGNED"  # API key + signature + timestamp


@dataclass(slots=True)
class Call:
    """One authenticated REST call as the endpoint sees it."""

    params: dict[str, str]
    account: str | None
    api_key: str | None


Handler = Callable[[Call], Awaitable[Any]]


class ListenKeys:
    """User-data stream listen keys: created over REST, consumed by the WebSocket side."""

    def __init__(self) -> None:
        self._accounts: dict[str, str] = {}
        self._by_account: dict[str, str] = {}
        self.closed_hooks: list[Callable[[str], None]] = []

    def create(self, account: str) -> str:
        # Binance returns the account's existing key while it is valid.
        key = self._by_account.get(account)
        if key is None:
            key = secrets.token_hex(30)
            self._accounts[key] = account
            self._by_account[account] = key
        return key

    def account(self, listen_key: str) -> str | None:
        return self._accounts.get(listen_key)

    def close(self, listen_key: str) -> None:
        account = self._accounts.pop(listen_key, None)
        if account is not None:
            self._by_account.pop(account, None)
            for hook in self.closed_hooks:
                hook(listen_key)


class BinanceRestApi:
    """The REST side of one paper venue."""

    def __init__(
        self,
        engine: MatchingEngine,
        keys: KeyRing,
        limiter: WeightLimiter,
        faults: FaultKnobs,
        listen_keys: ListenKeys,
        clock: Clock,
        closing: asyncio.Event,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.limiter = limiter
        self.faults = faults
        self.listen_keys = listen_keys
        self.clock = clock
        self._closing = closing
        self._endpoints: dict[tuple[str, str], tuple[Security, Handler]] = {
            ("GET", "ping"): (Security.NONE, self._ping),
            ("GET", "time"): (Security.NONE, self._time),
            ("GET", "exchangeInfo"): (Security.NONE, self._exchange_info),
            ("GET", "depth"): (Security.NONE, self._depth),
            ("GET", "trades"): (Security.NONE, self._trades),
            ("GET", "ticker/bookTicker"): (Security.NONE, self._book_ticker),
            ("GET", "ticker/24hr"): (Security.NONE, self._ticker_24hr),
            ("GET", "account"): (Security.SIGNED, self._account),
            ("POST", "order"): (Security.SIGNED, self._new_order),
            ("DELETE", "order"): (Security.SIGNED, self._cancel_order),
            ("GET", "order"): (Security.SIGNED, self._query_order),
            ("GET", "openOrders"): (Security.SIGNED, self._open_orders),
            ("DELETE", "openOrders"): (Security.SIGNED, self._cancel_open_orders),
            ("GET", "allOrders"): (Security.SIGNED, self._all_orders),
            ("GET", "myTrades"): (Security.SIGNED, self._my_trades),
            ("POST", "userDataStream"): (Security.API_KEY, self._listen_key_create),
            ("PUT", "userDataStream"): (Security.API_KEY, self._listen_key_keepalive),
            ("DELETE", "userDataStream"): (Security.API_KEY, self._listen_key_close),
        }

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.route("*", REST_PREFIX + "{endpoint:.+}", self.handle)]

    # --- the pipeline -----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one REST call the way Binance would."""
        endpoint = request.match_info["endpoint"]
        method = request.method
        raw_query = request.rel_url.raw_query_string
        raw_body = (await request.text()) if request.can_read_body else ""
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.update(parse_qsl(raw_body, keep_blank_values=True))
        api_key = request.headers.get("X-MBX-APIKEY")
        caller = f"key:{api_key}" if api_key else f"ip:{request.remote}"
        entry = self._endpoints.get((method, endpoint))
        if entry is None:
            return self._json(404, {"code": -1000, "msg": f"Unknown endpoint {method} /api/v3/{endpoint}"}, 0)

        forced = self.faults.forced_429_remaining()
        used = self.limiter.charge(caller, request_weight(method, endpoint, params))
        if forced > 0:
            return self._rate_limited(used, max(1, round(forced + 0.5)))
        if used > self.limiter.limit:
            return self._rate_limited(used, self.limiter.retry_after(caller))

        if self.faults.rest_delay_s > 0:
            await self._hold(self.faults.rest_delay_s)
        failure = self.faults.decide_rest_failure(mutating=method in ("POST", "DELETE", "PUT"))
        if failure is not None and not failure.after:
            return await self._fail(failure, used)

        security, handler = entry
        try:
            call = self._authenticate(security, api_key, raw_query, raw_body, params)
            result = await handler(call)
        except BinanceError as err:
            response = self._json(err.status, err.body(), used, err.headers)
        except OrderRejected as rej:
            mapped = self._rejection(rej, method, endpoint)
            response = self._json(mapped.status, mapped.body(), used)
        else:
            response = self._json(200, result, used)
        if failure is not None:
            # The engine acted; the client never learns it (Binance's "status unknown").
            log.info("paper_rest_fail_after", endpoint=endpoint, mode=failure.mode)
            return await self._fail(failure, used)
        return response

    def _authenticate(
        self, security: Security, api_key: str | None, raw_query: str, raw_body: str, params: dict[str, str]
    ) -> Call:
        if security is Security.NONE:
            return Call(params, None, api_key)
        if security is Security.API_KEY:
            credential = self.keys.credential(api_key)
            return Call(params, credential.account, api_key)
        credential = self.keys.verify(api_key, raw_query, raw_body, ms(self.clock.time()))
        return Call(params, credential.account, api_key)

    async def _fail(self, failure: RestFailure, used: int) -> web.Response:
        if failure.mode == "timeout":
            # Hold longer than the client waits; the client times out, state unknown to it.
            await self._hold(self.faults.timeout_hold_s)
        return self._json(_UNKNOWN_STATE.status, _UNKNOWN_STATE.body(), used)

    async def _hold(self, seconds: float) -> None:
        # Interruptible by venue shutdown, so stopping never waits for a held response.
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return

    def _rate_limited(self, used: int, retry_after: int) -> web.Response:
        body = {
            "code": -1003,
            "msg": f"Too many requests; current limit of IP is {self.limiter.limit} requests per minute. "
            "Please use the websocket for live updates to avoid polling the API.",
        }
        return self._json(429, body, used, {"Retry-After": str(retry_after)})

    @staticmethod
    def _json(status: int, body: Any, used: int, headers: dict[str, str] | None = None) -> web.Response:
        all_headers = {WEIGHT_HEADER: str(used)}
        if headers:
            all_headers.update(headers)
        return web.Response(
            status=status, body=orjson.dumps(body), content_type="application/json", headers=all_headers
        )

    @staticmethod
    def _rejection(rej: OrderRejected, method: str, endpoint: str) -> BinanceError:
        reason = rej.reason
        if reason is RejectReason.PRICE_FILTER:
            return BinanceError(400, -1013, "Filter failure: PRICE_FILTER")
        if reason is RejectReason.LOT_SIZE:
            return BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        if reason is RejectReason.MIN_NOTIONAL:
            return BinanceError(400, -1013, "Filter failure: NOTIONAL")
        if reason is RejectReason.INSUFFICIENT_BALANCE:
            return BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        if reason is RejectReason.WOULD_TAKE:
            return BinanceError(400, -2010, "Order would immediately match and take.")
        if reason is RejectReason.DUPLICATE_ORDER:
            return BinanceError(400, -2010, "Duplicate order sent.")
        if reason is RejectReason.UNKNOWN_SYMBOL:
            return BinanceError(400, -1121, "Invalid symbol.")
        if method == "DELETE":
            return BinanceError(400, -2011, "Unknown order sent.")
        return BinanceError(400, -2013, "Order does not exist.")

    # --- parameters -------------------------------------------------------------------

    def _spec(self, params: dict[str, str], required: bool = True) -> SymbolSpec | None:
        wire = params.get("symbol")
        if not wire:
            if required:
                raise BinanceError(
                    400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
                )
            return None
        spec = self.engine.by_wire.get(wire.upper())
        if spec is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return spec

    @staticmethod
    def _decimal(params: dict[str, str], name: str) -> Decimal | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation as exc:
            raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.") from exc
        if not value.is_finite():
            raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
        return value

    @staticmethod
    def _int(params: dict[str, str], name: str, default: int | None = None) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError as exc:
            raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.") from exc

    @staticmethod
    def _mandatory(name: str) -> BinanceError:
        return BinanceError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )

    def _limit(self, params: dict[str, str], default: int, maximum: int) -> int:
        limit = self._int(params, "limit", default)
        assert limit is not None
        if limit < 1:
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'limit'.")
        return min(limit, maximum)

    # --- public endpoints -------------------------------------------------------------

    async def _ping(self, call: Call) -> Any:
        return {}

    async def _time(self, call: Call) -> Any:
        return {"serverTime": ms(self.clock.time())}

    async def _exchange_info(self, call: Call) -> Any:
        wanted: set[str] | None = None
        if call.params.get("symbol"):
            wanted = {call.params["symbol"].upper()}
        elif call.params.get("symbols"):
            wanted = set(orjson.loads(call.params["symbols"]))
        specs = [s for s in self.engine.symbols.values() if wanted is None or s.wire in wanted]
        if wanted is not None and len(specs) != len(wanted):
            raise BinanceError(400, -1121, "Invalid symbol.")
        return {
            "timezone": "UTC",
            "serverTime": ms(self.clock.time()),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.limiter.limit,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            ],
            "exchangeFilters": [],
            "symbols": [symbol_info(s) for s in specs],
        }

    async def _depth(self, call: Call) -> Any:
        spec = self._spec(call.params)
        assert spec is not None
        limit = self._limit(call.params, 100, _MAX_LIMIT)
        bids, asks, last_update_id = self.engine.depth(spec.symbol, limit)
        return {
            "lastUpdateId": last_update_id,
            "bids": [[fmt(p), fmt(q)] for p, q in bids],
            "asks": [[fmt(p), fmt(q)] for p, q in asks],
        }

    async def _trades(self, call: Call) -> Any:
        spec = self._spec(call.params)
        assert spec is not None
        limit = self._limit(call.params, 500, 1000)
        return [public_trade(ex) for ex in self.engine.recent_trades(spec.symbol, limit)]

    async def _book_ticker(self, call: Call) -> Any:
        spec = self._spec(call.params, required=False)
        if spec is not None:
            return self._book_ticker_of(spec)
        return [self._book_ticker_of(s) for s in self.engine.symbols.values()]

    def _book_ticker_of(self, spec: SymbolSpec) -> dict[str, Any]:
        bids, asks, _ = self.engine.depth(spec.symbol, 1)
        bid, bid_qty = bids[0] if bids else (None, None)
        ask, ask_qty = asks[0] if asks else (None, None)
        return {
            "symbol": spec.wire,
            "bidPrice": fmt(bid),
            "bidQty": fmt(bid_qty),
            "askPrice": fmt(ask),
            "askQty": fmt(ask_qty),
        }

    async def _ticker_24hr(self, call: Call) -> Any:
        spec = self._spec(call.params, required=False)
        if spec is not None:
            return self._ticker_of(spec)
        return [self._ticker_of(s) for s in self.engine.symbols.values()]

    def _ticker_of(self, spec: SymbolSpec) -> dict[str, Any]:
        now = self.clock.time()
        since = now - 86_400
        trades = [t for t in self.engine.recent_trades(spec.symbol, 1000) if t.ts >= since]
        book = self._book_ticker_of(spec)
        if trades:
            first, last = trades[0], trades[-1]
            volume = sum((t.qty for t in trades), Decimal(0))
            quote_volume = sum((t.quote_qty for t in trades), Decimal(0))
            high = max(t.price for t in trades)
            low = min(t.price for t in trades)
            change = last.price - first.price
            pct = (change / first.price * 100).quantize(Decimal("0.001"))
            avg = quote_volume / volume if volume else Decimal(0)
            open_price, last_price, last_qty = first.price, last.price, last.qty
            first_id, last_id = first.trade_id, last.trade_id
        else:
            volume = quote_volume = high = low = change = pct = avg = Decimal(0)
            open_price = last_price = last_qty = Decimal(0)
            first_id = last_id = -1
        return {
            "symbol": spec.wire,
            "priceChange": fmt(change),
            "priceChangePercent": str(pct),
            "weightedAvgPrice": fmt(avg),
            "prevClosePrice": fmt(open_price),
            "lastPrice": fmt(last_price),
            "lastQty": fmt(last_qty),
            "bidPrice": book["bidPrice"],
            "bidQty": book["bidQty"],
            "askPrice": book["askPrice"],
            "askQty": book["askQty"],
            "openPrice": fmt(open_price),
            "highPrice": fmt(high),
            "lowPrice": fmt(low),
            "volume": fmt(volume),
            "quoteVolume": fmt(quote_volume),
            "openTime": ms(since),
            "closeTime": ms(now),
            "firstId": first_id,
            "lastId": last_id,
            "count": len(trades),
        }

    # --- signed endpoints -------------------------------------------------------------

    async def _account(self, call: Call) -> Any:
        assert call.account is not None
        balances = self.engine.balances(call.account)
        omit_zero = call.params.get("omitZeroBalances", "false").lower() == "true"
        rows = [
            {"asset": asset, "free": fmt(b.free), "locked": fmt(b.locked)}
            for asset, b in sorted(balances.items())
            if not (omit_zero and b.free == 0 and b.locked == 0)
        ]
        maker = int(self.engine.maker_fee * 10_000)
        taker = int(self.engine.taker_fee * 10_000)
        return {
            "makerCommission": maker,
            "takerCommission": taker,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": fmt(self.engine.maker_fee),
                "taker": fmt(self.engine.taker_fee),
                "buyer": _ZERO8,
                "seller": _ZERO8,
            },
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": ms(self.clock.time()),
            "accountType": "SPOT",
            "balances": rows,
            "permissions": ["SPOT"],
            "uid": abs(hash(call.account)) % 10**9,
        }

    async def _new_order(self, call: Call) -> Any:
        assert call.account is not None
        p = call.params
        spec = self._spec(p)
        assert spec is not None
        side_raw = p.get("side", "").upper()
        if side_raw not in ("BUY", "SELL"):
            raise self._mandatory("side") if not side_raw else BinanceError(400, -1117, "Invalid side.")
        type_raw = p.get("type", "").upper()
        try:
            order_type = OrderType(type_raw)
        except ValueError as exc:
            if not type_raw:
                raise self._mandatory("type") from exc
            raise BinanceError(400, -1116, "Invalid orderType.") from exc
        qty = self._decimal(p, "quantity")
        if qty is None:
            if p.get("quoteOrderQty"):
                raise BinanceError(
                    400, -1013, "quoteOrderQty is not supported by the paper venue; send quantity."
                )
            raise self._mandatory("quantity")
        price = self._decimal(p, "price")
        tif = TimeInForce.GTC
        if order_type is OrderType.LIMIT:
            if price is None:
                raise self._mandatory("price")
            tif_raw = p.get("timeInForce", "").upper()
            if not tif_raw:
                raise self._mandatory("timeInForce")
            try:
                tif = TimeInForce(tif_raw)
            except ValueError as exc:
                raise BinanceError(400, -1115, "Invalid timeInForce.") from exc
        elif order_type is OrderType.LIMIT_MAKER:
            if price is None:
                raise self._mandatory("price")
        elif price is not None:
            raise BinanceError(400, -1106, "Parameter 'price' sent when not required.")
        cid = p.get("newClientOrderId") or None
        order, executions = self.engine.place(
            call.account,
            spec.symbol,
            Side.BUY if side_raw == "BUY" else Side.SELL,
            order_type,
            qty,
            price,
            tif,
            cid,
        )
        resp_type = p.get("newOrderRespType", "FULL")
        body = order_ack(order, spec)
        if resp_type == "ACK":
            return body
        body.update(order_result(order))
        if resp_type == "FULL":
            body["fills"] = [
                {
                    "price": fmt(ex.price),
                    "qty": fmt(ex.qty),
                    "commission": fmt(ex.taker_fee),
                    "commissionAsset": ex.taker_fee_asset,
                    "tradeId": ex.trade_id,
                }
                for ex in executions
                if ex.taker_order.order_id == order.order_id
            ]
        return body

    def _order_ref(
        self, params: dict[str, str], id_name: str, cid_name: str
    ) -> tuple[int | None, str | None]:
        order_id = self._int(params, id_name)
        cid = params.get(cid_name) or None
        if order_id is None and cid is None:
            raise BinanceError(
                400, -1102, f"Param '{cid_name}' or '{id_name}' must be sent, but both were empty/null!"
            )
        return order_id, cid

    async def _cancel_order(self, call: Call) -> Any:
        assert call.account is not None
        spec = self._spec(call.params)
        assert spec is not None
        order_id, cid = self._order_ref(call.params, "orderId", "origClientOrderId")
        order = self.engine.cancel(call.account, spec.symbol, order_id, cid)
        return cancel_result(order, spec, call.params.get("newClientOrderId"), self.clock)

    async def _query_order(self, call: Call) -> Any:
        assert call.account is not None
        spec = self._spec(call.params)
        assert spec is not None
        order_id, cid = self._order_ref(call.params, "orderId", "origClientOrderId")
        return order_status(self.engine.get_order(call.account, spec.symbol, order_id, cid), spec)

    async def _open_orders(self, call: Call) -> Any:
        assert call.account is not None
        spec = self._spec(call.params, required=False)
        orders = self.engine.open_orders(call.account, spec.symbol if spec else None)
        return [
            order_status(o, self.engine.symbols[o.symbol]) for o in sorted(orders, key=lambda o: o.order_id)
        ]

    async def _cancel_open_orders(self, call: Call) -> Any:
        assert call.account is not None
        spec = self._spec(call.params)
        assert spec is not None
        orders = self.engine.cancel_all(call.account, spec.symbol)
        if not orders:
            # Binance answers a cancel-all with nothing open as an unknown order.
            raise BinanceError(400, -2011, "Unknown order sent.")
        return [cancel_result(o, spec, None, self.clock) for o in orders]

    async def _all_orders(self, call: Call) -> Any:
        assert call.account is not None
        spec = self._spec(call.params)
        assert spec is not None
        limit = self._limit(call.params, 500, 1000)
        orders = self.engine.all_orders(call.account, spec.symbol, 10_000)
        start = self._int(call.params, "startTime")
        end = self._int(call.params, "endTime")
        from_id = self._int(call.params, "orderId")
        orders = [
            o
            for o in orders
            if (start is None or ms(o.created_ts) >= start)
            and (end is None or ms(o.created_ts) <= end)
            and (from_id is None or o.order_id >= from_id)
        ]
        # With a starting point Binance pages forward from it, otherwise it returns the newest.
        page = orders[:limit] if from_id is not None or start is not None else orders[-limit:]
        return [order_status(o, spec) for o in page]

    async def _my_trades(self, call: Call) -> Any:
        assert call.account is not None
        spec = self._spec(call.params)
        assert spec is not None
        limit = self._limit(call.params, 500, 1000)
        start = self._int(call.params, "startTime")
        end = self._int(call.params, "endTime")
        from_id = self._int(call.params, "fromId")
        only_order = self._int(call.params, "orderId")
        rows: list[dict[str, Any]] = []
        for ex in self.engine.my_trades(call.account, spec.symbol, 10_000):
            if (start is not None and ms(ex.ts) < start) or (end is not None and ms(ex.ts) > end):
                continue
            if from_id is not None and ex.trade_id < from_id:
                continue
            rows.extend(
                r
                for r in account_trades(ex, call.account, spec)
                if only_order is None or r["orderId"] == only_order
            )
        if from_id is not None or start is not None:
            return rows[:limit]
        return rows[-limit:]

    # --- user data stream (API key only) ------------------------------------------------

    async def _listen_key_create(self, call: Call) -> Any:
        assert call.account is not None
        return {"listenKey": self.listen_keys.create(call.account)}

    async def _listen_key_keepalive(self, call: Call) -> Any:
        key = call.params.get("listenKey", "")
        if self.listen_keys.account(key) != call.account:
            raise BinanceError(400, -1125, "This listenKey does not exist.")
        return {}

    async def _listen_key_close(self, call: Call) -> Any:
        key = call.params.get("listenKey", "")
        if self.listen_keys.account(key) != call.account:
            raise BinanceError(400, -1125, "This listenKey does not exist.")
        self.listen_keys.close(key)
        return {}


# --- wire formats (shared with the WebSocket side) ------------------------------------


def symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    """One ``exchangeInfo`` symbol with PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE and NOTIONAL."""
    max_price = Decimal(1_000_000)
    max_qty = Decimal(90_000_000)
    return {
        "symbol": spec.wire,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": False,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(spec.tick),
                "maxPrice": fmt(max_price),
                "tickSize": fmt(spec.tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(max(spec.min_qty, spec.step)),
                "maxQty": fmt(max_qty),
                "stepSize": fmt(spec.step),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt(max(spec.min_qty, spec.step)),
                "maxQty": fmt(max_qty),
                "stepSize": fmt(spec.step),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(spec.min_notional),
                "applyMinToMarket": False,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


def public_trade(ex: Execution) -> dict[str, Any]:
    return {
        "id": ex.trade_id,
        "price": fmt(ex.price),
        "qty": fmt(ex.qty),
        "quoteQty": fmt(ex.quote_qty),
        "time": ms(ex.ts),
        "isBuyerMaker": ex.taker_side is Side.SELL,
        "isBestMatch": True,
    }


def order_ack(order: Order, spec: SymbolSpec) -> dict[str, Any]:
    return {
        "symbol": spec.wire,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": ms(order.updated_ts),
    }


def order_result(order: Order) -> dict[str, Any]:
    return {
        "price": fmt(order.price),
        "origQty": fmt(order.qty),
        "executedQty": fmt(order.filled),
        "origQuoteOrderQty": _ZERO8,
        "cummulativeQuoteQty": fmt(order.cum_quote),
        "status": order.status.value,
        "timeInForce": order.tif.value,
        "type": order.type.value,
        "side": wire_side(order.side),
        "workingTime": ms(order.created_ts),
        "selfTradePreventionMode": "NONE",
    }


def order_status(order: Order, spec: SymbolSpec) -> dict[str, Any]:
    """An order as ``GET order``/``openOrders``/``allOrders`` show it."""
    body: dict[str, Any] = {
        "symbol": spec.wire,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
    }
    body.update(order_result(order))
    body.update(
        {
            "stopPrice": _ZERO8,
            "icebergQty": _ZERO8,
            "time": ms(order.created_ts),
            "updateTime": ms(order.updated_ts),
            "isWorking": True,
        }
    )
    return body


def cancel_result(order: Order, spec: SymbolSpec, new_cid: str | None, clock: Clock) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": spec.wire,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": new_cid or secrets.token_urlsafe(16)[:22],
        "transactTime": ms(clock.time()),
    }
    body.update(order_result(order))
    return body


def account_trades(ex: Execution, account: str, spec: SymbolSpec) -> list[dict[str, Any]]:
    """``myTrades`` rows of ``account`` in one execution (two when it traded with itself)."""
    rows: list[dict[str, Any]] = []
    for order, is_maker, fee, fee_asset in (
        (ex.maker_order, True, ex.maker_fee, ex.maker_fee_asset),
        (ex.taker_order, False, ex.taker_fee, ex.taker_fee_asset),
    ):
        if order.account != account:
            continue
        rows.append(
            {
                "symbol": spec.wire,
                "id": ex.trade_id,
                "orderId": order.order_id,
                "orderListId": -1,
                "price": fmt(ex.price),
                "qty": fmt(ex.qty),
                "quoteQty": fmt(ex.quote_qty),
                "commission": fmt(fee),
                "commissionAsset": fee_asset,
                "time": ms(ex.ts),
                "isBuyer": order.side is Side.BUY,
                "isMaker": is_maker,
                "isBestMatch": True,
            }
        )
    return rows
