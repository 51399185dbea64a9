"""The ccxt adapter: one venue account, exact decimals out, typed outcomes back.

Everything the order manager sends goes through here. Prices and sizes leave as exact
decimal strings already on the market's tick and step (ccxt's ``price_to_precision``
rounds to nearest and ``amount_to_precision`` truncates, so a value already on the grid
passes through unchanged); every request first takes its weight from the account's
:class:`WeightLimiter`; every ccxt exception becomes one of the outcomes in
:mod:`connectors.execution.errors`.

One ccxt *pro* instance serves both REST and the user-data stream, with ccxt's own rate
limiter off: ours decides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import ccxt.pro as ccxtpro
import structlog

from connectors.execution.credentials import Credentials
from connectors.execution.errors import RateLimited, classify
from connectors.execution.orders import OrderState
from connectors.execution.rate_limit import WeightLimiter, Weights
from strategies.types import MarketRules, Side

log = structlog.get_logger(__name__)
T = TypeVar("T")


def _dec(value: object) -> Decimal:
    """ccxt hands numbers back as floats (or strings); their shortest repr is the venue's text."""
    if value is None:
        return Decimal(0)
    return Decimal(value) if isinstance(value, str) else Decimal(repr(value))


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as the venue reports it."""

    client_order_id: str | None
    venue_order_id: str
    symbol: str
    side: Side
    price: Decimal
    amount: Decimal
    filled: Decimal
    status: str  # ccxt unified: open, closed, canceled, expired, rejected
    ts: float

    @property
    def state(self) -> OrderState:
        if self.status == "open":
            return OrderState.PARTIALLY_FILLED if self.filled > 0 else OrderState.OPEN
        if self.status == "closed":
            return OrderState.FILLED
        if self.status == "rejected":
            return OrderState.REJECTED
        return OrderState.CANCELLED  # canceled, expired

    @classmethod
    def from_ccxt(cls, order: Mapping[str, Any]) -> VenueOrder:
        ts = order.get("lastUpdateTimestamp") or order.get("timestamp") or 0
        info = order.get("info")
        # A cancel answer's clientOrderId is the cancel request's own id; the order's is orig...
        original = info.get("origClientOrderId") if isinstance(info, dict) else None
        return cls(
            client_order_id=original or order.get("clientOrderId"),
            venue_order_id=str(order.get("id")),
            symbol=str(order.get("symbol")),
            side=Side(str(order.get("side"))),
            price=_dec(order.get("price")),
            amount=_dec(order.get("amount")),
            filled=_dec(order.get("filled")),
            status=str(order.get("status")),
            ts=float(ts) / 1000.0,
        )


@dataclass(frozen=True, slots=True)
class VenueTrade:
    """One execution of one of our orders, as the venue reports it."""

    trade_id: str
    venue_order_id: str
    client_order_id: str | None  # only on the user-data stream; REST trades carry the order id
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    ts: float
    is_maker: bool

    @classmethod
    def from_ccxt(cls, trade: Mapping[str, Any]) -> VenueTrade:
        fee = trade.get("fee") or {}
        info = trade.get("info") or {}
        client_id = info.get("c") if isinstance(info, dict) else None
        return cls(
            trade_id=str(trade.get("id")),
            venue_order_id=str(trade.get("order")),
            client_order_id=client_id if isinstance(client_id, str) else None,
            symbol=str(trade.get("symbol")),
            side=Side(str(trade.get("side"))),
            price=_dec(trade.get("price")),
            qty=_dec(trade.get("amount")),
            fee=_dec(fee.get("cost")),
            fee_asset=str(fee.get("currency") or ""),
            ts=float(trade.get("timestamp") or 0) / 1000.0,
            is_maker=trade.get("takerOrMaker") == "maker",
        )


@dataclass(slots=True)
class AdapterStats:
    requests: int = 0
    rate_limited: int = 0
    unknown_outcomes: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)


class VenueAdapter:
    """One venue account through ccxt. Build with :meth:`from_config` or pass an exchange."""

    def __init__(self, venue: str, exchange: Any, limiter: WeightLimiter | None = None) -> None:
        self.venue = venue
        self.exchange = exchange
        self.limiter = limiter or WeightLimiter()
        self.stats = AdapterStats()
        self.rules: dict[str, MarketRules] = {}

    @classmethod
    def from_config(
        cls,
        venue: str,
        exchange_id: str,
        ccxt_config: Mapping[str, Any],
        credentials: Credentials | None = None,
        *,
        timeout_ms: int | None = None,
        weight_per_minute: int = 6000,
    ) -> VenueAdapter:
        """Build from a ccxt exchange id and constructor config (URL overrides, options).

        Credentials, when given, override any in ``ccxt_config``; ccxt's own limiter is
        always switched off.
        """
        config = dict(ccxt_config)
        if credentials is not None:
            config.update(credentials.ccxt_fields())
        config["enableRateLimit"] = False
        # We list open orders across symbols on purpose (leftovers of a previous run);
        # ccxt's binance refuses that unless told we know it costs more weight.
        config["options"] = {"warnOnFetchOpenOrdersWithoutSymbol": False, **dict(config.get("options") or {})}
        if timeout_ms is not None:
            config["timeout"] = timeout_ms
        exchange_cls = getattr(ccxtpro, exchange_id, None)
        if exchange_cls is None:
            raise ValueError(f"ccxt pro has no exchange {exchange_id!r}")
        return cls(venue, exchange_cls(config), WeightLimiter(weight_per_minute))

    async def close(self) -> None:
        await self.exchange.close()

    # plumbing ------------------------------------------------------------------------

    async def _call(self, endpoint: str, weight: int, request: Callable[[], Awaitable[T]]) -> T:
        await self.limiter.acquire(weight)
        self.stats.requests += 1
        self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1
        try:
            result = await request()
        except Exception as exc:
            outcome = classify(exc, getattr(self.exchange, "last_response_headers", None))
            if isinstance(outcome, RateLimited):
                self.stats.rate_limited += 1
                self.limiter.back_off(outcome.retry_after_s)
                log.warning(
                    "venue_rate_limited",
                    venue=self.venue,
                    endpoint=endpoint,
                    retry_after_s=outcome.retry_after_s,
                )
            raise outcome from exc
        self._observe_headers()
        return result

    def _observe_headers(self) -> None:
        headers = getattr(self.exchange, "last_response_headers", None)
        if not isinstance(headers, Mapping):
            return
        for key, value in headers.items():
            if str(key).lower() == "x-mbx-used-weight-1m":
                try:
                    self.limiter.observe_used_weight(int(value))
                except (TypeError, ValueError):
                    pass
                return

    # market metadata ------------------------------------------------------------------

    async def load_markets(self) -> dict[str, MarketRules]:
        """Tick, step, min size and min notional for every market, from ``load_markets``."""
        markets = await self._call(
            "load_markets", Weights.EXCHANGE_INFO, lambda: self.exchange.load_markets()
        )
        self.rules = {symbol: rules_from_market(m) for symbol, m in markets.items() if m.get("spot", True)}
        return self.rules

    # orders ---------------------------------------------------------------------------

    async def create_post_only(
        self, symbol: str, side: Side, price: Decimal, size: Decimal, client_order_id: str
    ) -> VenueOrder:
        """Place a post-only limit order (Binance LIMIT_MAKER). Price and size must already
        be on the grid and within limits (the order manager checks); we refuse otherwise."""
        rules = self.rules.get(symbol)
        if rules is not None and (why := rules.violation(price, size)) is not None:
            raise ValueError(f"refusing to send {client_order_id}: {why}")
        params = {"postOnly": True, "newClientOrderId": client_order_id}
        order = await self._call(
            "create_order",
            Weights.CREATE_ORDER,
            lambda: self.exchange.create_order(symbol, "limit", side.value, str(size), str(price), params),
        )
        return VenueOrder.from_ccxt(order)

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrder:
        """Cancel one order by client id; raises OrderNotFound if it is no longer open."""
        order = await self._call(
            "cancel_order",
            Weights.CANCEL_ORDER,
            lambda: self.exchange.cancel_order(None, symbol, {"origClientOrderId": client_order_id}),
        )
        return VenueOrder.from_ccxt(order)

    async def fetch_order(self, symbol: str, client_order_id: str) -> VenueOrder:
        """Look an order up by client id (open or finished); raises OrderNotFound."""
        order = await self._call(
            "fetch_order",
            Weights.FETCH_ORDER,
            lambda: self.exchange.fetch_order(None, symbol, {"origClientOrderId": client_order_id}),
        )
        return VenueOrder.from_ccxt(order)

    async def fetch_order_by_id(self, symbol: str, venue_order_id: str) -> VenueOrder:
        order = await self._call(
            "fetch_order", Weights.FETCH_ORDER, lambda: self.exchange.fetch_order(venue_order_id, symbol)
        )
        return VenueOrder.from_ccxt(order)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        weight = Weights.OPEN_ORDERS_SYMBOL if symbol else Weights.OPEN_ORDERS_ALL
        orders = await self._call(
            "fetch_open_orders", weight, lambda: self.exchange.fetch_open_orders(symbol)
        )
        return [VenueOrder.from_ccxt(o) for o in orders]

    async def fetch_my_trades(
        self,
        symbol: str,
        since_ts: float | None = None,
        limit: int = 1000,
        *,
        venue_order_id: str | None = None,
    ) -> list[VenueTrade]:
        """Our trades on ``symbol`` from ``since_ts`` on, or every trade of one order
        (Binance ``myTrades?orderId=``)."""
        since = int(since_ts * 1000) if since_ts is not None else None
        params = {} if venue_order_id is None else {"orderId": venue_order_id}
        trades = await self._call(
            "fetch_my_trades",
            Weights.MY_TRADES,
            lambda: self.exchange.fetch_my_trades(symbol, since, limit, params),
        )
        return [VenueTrade.from_ccxt(t) for t in trades]

    async def fetch_balances(self) -> dict[str, dict[str, Decimal]]:
        """asset -> {"free", "used", "total"} as exact decimals (from the raw account info)."""
        balance = await self._call("fetch_balance", Weights.ACCOUNT, lambda: self.exchange.fetch_balance())
        out: dict[str, dict[str, Decimal]] = {}
        for raw in (balance.get("info") or {}).get("balances", []):
            free, locked = Decimal(raw["free"]), Decimal(raw["locked"])
            out[raw["asset"]] = {"free": free, "used": locked, "total": free + locked}
        if not out:  # a venue whose raw answer we do not know: fall back to ccxt's floats
            for asset, parts in balance.items():
                if (
                    isinstance(parts, dict)
                    and "total" in parts
                    and asset not in ("info", "free", "used", "total")
                ):
                    out[asset] = {k: _dec(parts.get(k)) for k in ("free", "used", "total")}
        return out

    # user-data stream (no weight: one WebSocket) -----------------------------------------

    async def watch_orders(self) -> list[VenueOrder]:
        """The next batch of order updates (raises the typed outcomes on stream errors)."""
        try:
            orders = await self.exchange.watch_orders()
        except Exception as exc:
            raise classify(exc) from exc
        return [VenueOrder.from_ccxt(o) for o in orders]

    async def watch_my_trades(self) -> list[VenueTrade]:
        try:
            trades = await self.exchange.watch_my_trades()
        except Exception as exc:
            raise classify(exc) from exc
        return [VenueTrade.from_ccxt(t) for t in trades]


def rules_from_market(market: Mapping[str, Any]) -> MarketRules:
    """MarketRules from a ccxt market (precision in TICK_SIZE mode, as ccxt binance uses).

    Binance's raw filters are preferred when present: they are the exact strings the venue
    checks against, where ccxt's are floats.
    """
    filters = {f.get("filterType"): f for f in (market.get("info") or {}).get("filters", []) or []}
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    tick = (
        _dec(filters["PRICE_FILTER"]["tickSize"])
        if "PRICE_FILTER" in filters
        else _dec(precision.get("price"))
    )
    step = _dec(filters["LOT_SIZE"]["stepSize"]) if "LOT_SIZE" in filters else _dec(precision.get("amount"))
    min_qty = (
        _dec(filters["LOT_SIZE"]["minQty"])
        if "LOT_SIZE" in filters
        else _dec((limits.get("amount") or {}).get("min"))
    )
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL")
    min_notional = (
        _dec(notional.get("minNotional")) if notional else _dec((limits.get("cost") or {}).get("min"))
    )
    max_qty_raw = (
        filters["LOT_SIZE"].get("maxQty")
        if "LOT_SIZE" in filters
        else (limits.get("amount") or {}).get("max")
    )
    max_qty = _dec(max_qty_raw) if max_qty_raw is not None and _dec(max_qty_raw) > 0 else None
    return MarketRules(
        symbol=str(market["symbol"]),
        tick=tick.normalize(),
        step=step.normalize(),
        min_qty=min_qty,
        min_notional=min_notional,
        max_qty=max_qty,
    )
