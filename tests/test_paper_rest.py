"""The paper venue's Binance REST surface, over real HTTP: signing, recvWindow, errors, weights."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from connectors.paper import PaperExchange, PaperVenueHandle, Scenario
from connectors.paper.auth import sign
from tests.fixtures.paper import PaperExchangeFactory


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    venue: PaperVenueHandle,
    method: str,
    endpoint: str,
    params: dict[str, Any] | None = None,
    *,
    signed: bool = True,
    secret: str | None = None,
    api_key: str | None = None,
    timestamp_ms: int | None = None,
    in_body: bool = False,
) -> tuple[int, Any, dict[str, str]]:
    """One REST call the way a Binance client makes it; returns (status, json, headers)."""
    query = dict(params or {})
    headers = {}
    if signed or api_key:
        headers["X-MBX-APIKEY"] = api_key or venue.api_key
    if signed:
        query["timestamp"] = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        query["recvWindow"] = 5000
        payload = urlencode(query)
        payload += "&signature=" + sign(payload, secret or venue.secret)
    else:
        payload = urlencode(query)
    url = f"{venue.rest_url}/{endpoint}"
    if in_body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        resp = await http.request(method, url, data=payload, headers=headers)
    else:
        resp = await http.request(method, f"{url}?{payload}" if payload else url, headers=headers)
    async with resp:
        return resp.status, await resp.json(), dict(resp.headers)


@pytest.fixture
def quiet_venue(paper_exchange: PaperExchange) -> PaperVenueHandle:
    paper_exchange.pause_market()
    return paper_exchange.venues["alpha"]


async def test_public_endpoints_answer_like_binance(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle
) -> None:
    status, body, _ = await call(http, quiet_venue, "GET", "ping", signed=False)
    assert (status, body) == (200, {})
    _, body, _ = await call(http, quiet_venue, "GET", "time", signed=False)
    assert abs(body["serverTime"] - time.time() * 1000) < 5000
    _, info, _ = await call(http, quiet_venue, "GET", "exchangeInfo", signed=False)
    bera = next(s for s in info["symbols"] if s["symbol"] == "BERAUSDT")
    filters = {f["filterType"]: f for f in bera["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.00010000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.01000000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    _, depth, _ = await call(
        http, quiet_venue, "GET", "depth", {"symbol": "BERAUSDT", "limit": 5}, signed=False
    )
    bids, asks, last_id = quiet_venue.engine.depth("BERA/USDT", 5)
    assert depth["lastUpdateId"] == last_id
    assert [[Decimal(p), Decimal(q)] for p, q in depth["bids"]] == [[p, q] for p, q in bids]
    assert [[Decimal(p), Decimal(q)] for p, q in depth["asks"]] == [[p, q] for p, q in asks]
    _, ticker, _ = await call(
        http, quiet_venue, "GET", "ticker/bookTicker", {"symbol": "BERAUSDT"}, signed=False
    )
    assert Decimal(ticker["bidPrice"]) == bids[0][0] and Decimal(ticker["askPrice"]) == asks[0][0]
    status, day, _ = await call(http, quiet_venue, "GET", "ticker/24hr", {"symbol": "BERAUSDT"}, signed=False)
    assert status == 200 and day["symbol"] == "BERAUSDT"
    status, trades, _ = await call(http, quiet_venue, "GET", "trades", {"symbol": "BERAUSDT"}, signed=False)
    assert status == 200 and isinstance(trades, list)


async def test_bad_signature_is_rejected_with_1022(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle
) -> None:
    status, body, _ = await call(http, quiet_venue, "GET", "account", secret="not-the-secret")
    assert status == 400 and body["code"] == -1022


async def test_signature_over_the_body_is_accepted(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle
) -> None:
    status, body, _ = await call(
        http,
        quiet_venue,
        "POST",
        "order",
        {
            "symbol": "BERAUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "10",
            "price": "1.0000",
        },
        in_body=True,
    )
    assert status == 200, body
    assert body["status"] == "NEW"


async def test_unknown_api_key_is_rejected(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle
) -> None:
    status, body, _ = await call(http, quiet_venue, "GET", "account", api_key="nobody")
    assert status == 401 and body["code"] == -2015


async def test_timestamp_outside_recv_window_is_rejected_with_1021(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle
) -> None:
    stale = int(time.time() * 1000) - 10_000
    status, body, _ = await call(http, quiet_venue, "GET", "account", timestamp_ms=stale)
    assert status == 400 and body["code"] == -1021
    ahead = int(time.time() * 1000) + 5_000
    _, body, _ = await call(http, quiet_venue, "GET", "account", timestamp_ms=ahead)
    assert body["code"] == -1021


async def test_unknown_symbol_is_rejected_with_1121(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle
) -> None:
    status, body, _ = await call(http, quiet_venue, "GET", "depth", {"symbol": "DOGEUSDT"}, signed=False)
    assert status == 400 and body == {"code": -1121, "msg": "Invalid symbol."}


@pytest.mark.parametrize(
    ("quantity", "price", "message"),
    [
        ("10", "2.00005", "Filter failure: PRICE_FILTER"),
        ("10.005", "2.0000", "Filter failure: LOT_SIZE"),
        ("1", "2.0000", "Filter failure: NOTIONAL"),
    ],
)
async def test_filter_failures_are_1013_with_binance_wording(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle, quantity: str, price: str, message: str
) -> None:
    order = {"symbol": "BERAUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    status, body, _ = await call(
        http, quiet_venue, "POST", "order", {**order, "quantity": quantity, "price": price}
    )
    assert status == 400 and body == {"code": -1013, "msg": message}


async def test_order_errors_use_binance_codes(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle
) -> None:
    base = {"symbol": "BERAUSDT", "side": "BUY", "timeInForce": "GTC"}
    _, body, _ = await call(
        http, quiet_venue, "POST", "order", {**base, "type": "LIMIT", "quantity": "100000", "price": "2.0000"}
    )
    assert body == {"code": -2010, "msg": "Account has insufficient balance for requested action."}
    _, ask, _ = await call(
        http, quiet_venue, "GET", "ticker/bookTicker", {"symbol": "BERAUSDT"}, signed=False
    )
    maker = {
        "symbol": "BERAUSDT",
        "side": "BUY",
        "type": "LIMIT_MAKER",
        "quantity": "10",
        "price": ask["askPrice"],
    }
    _, body, _ = await call(http, quiet_venue, "POST", "order", maker)
    assert body == {"code": -2010, "msg": "Order would immediately match and take."}
    _, body, _ = await call(http, quiet_venue, "DELETE", "order", {"symbol": "BERAUSDT", "orderId": 999999})
    assert body == {"code": -2011, "msg": "Unknown order sent."}
    _, body, _ = await call(http, quiet_venue, "GET", "order", {"symbol": "BERAUSDT", "orderId": 999999})
    assert body == {"code": -2013, "msg": "Order does not exist."}


async def test_order_lifecycle_over_signed_endpoints(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle
) -> None:
    order = {"symbol": "BERAUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "10"}
    _, first, _ = await call(
        http, quiet_venue, "POST", "order", {**order, "price": "9.0000", "newClientOrderId": "t-1"}
    )
    _, second, _ = await call(
        http, quiet_venue, "POST", "order", {**order, "price": "9.5000", "newClientOrderId": "t-2"}
    )
    assert first["clientOrderId"] == "t-1" and first["fills"] == []
    _, opened, _ = await call(http, quiet_venue, "GET", "openOrders", {"symbol": "BERAUSDT"})
    assert [o["clientOrderId"] for o in opened] == ["t-1", "t-2"]
    _, got, _ = await call(
        http, quiet_venue, "GET", "order", {"symbol": "BERAUSDT", "origClientOrderId": "t-2"}
    )
    assert got["orderId"] == second["orderId"] and got["price"] == "9.50000000"
    status, canceled, _ = await call(http, quiet_venue, "DELETE", "openOrders", {"symbol": "BERAUSDT"})
    assert status == 200 and {o["status"] for o in canceled} == {"CANCELED"}
    _, everything, _ = await call(http, quiet_venue, "GET", "allOrders", {"symbol": "BERAUSDT"})
    assert [o["status"] for o in everything if o["clientOrderId"] in ("t-1", "t-2")] == [
        "CANCELED",
        "CANCELED",
    ]
    _, account, _ = await call(http, quiet_venue, "GET", "account")
    bera = next(b for b in account["balances"] if b["asset"] == "BERA")
    assert bera == {"asset": "BERA", "free": "8000.00000000", "locked": "0.00000000"}


async def test_ioc_and_fok_orders(http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle) -> None:
    _, ticker, _ = await call(
        http, quiet_venue, "GET", "ticker/bookTicker", {"symbol": "BERAUSDT"}, signed=False
    )
    ask, ask_qty = Decimal(ticker["askPrice"]), Decimal(ticker["askQty"])
    base = {"symbol": "BERAUSDT", "side": "BUY", "type": "LIMIT", "price": str(ask)}
    _, fok, _ = await call(
        http, quiet_venue, "POST", "order", {**base, "timeInForce": "FOK", "quantity": str(ask_qty + 1000)}
    )
    assert fok["status"] == "EXPIRED" and fok["executedQty"] == "0.00000000"
    _, ioc, _ = await call(
        http, quiet_venue, "POST", "order", {**base, "timeInForce": "IOC", "quantity": str(ask_qty + 1000)}
    )
    assert ioc["status"] == "EXPIRED" and Decimal(ioc["executedQty"]) == ask_qty
    assert sum(Decimal(f["qty"]) for f in ioc["fills"]) == ask_qty


async def test_every_response_reports_used_weight(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle
) -> None:
    _, _, headers = await call(http, quiet_venue, "GET", "exchangeInfo", signed=False)
    first = int(headers["X-MBX-USED-WEIGHT-1M"])
    _, _, headers = await call(
        http, quiet_venue, "GET", "depth", {"symbol": "BERAUSDT", "limit": 1000}, signed=False
    )
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) == first + 50
    _, _, headers = await call(http, quiet_venue, "GET", "depth", {"symbol": "DOGEUSDT"}, signed=False)
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) == first + 55  # errors are charged too
    _, _, headers = await call(http, quiet_venue, "GET", "account")
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) == 20  # signed calls are counted per API key


async def test_exceeding_the_weight_limit_answers_429_with_retry_after(
    http: aiohttp.ClientSession, paper_scenario: Scenario, paper_exchange_factory: PaperExchangeFactory
) -> None:
    paper_scenario.venues[0].weight_limit_per_minute = 100
    exchange = await paper_exchange_factory(paper_scenario)
    exchange.pause_market()
    venue = exchange.venues["alpha"]
    statuses = []
    for _ in range(6):
        status, body, headers = await call(http, venue, "GET", "exchangeInfo", signed=False)  # weight 20
        statuses.append(status)
    assert statuses == [200, 200, 200, 200, 200, 429]
    assert body["code"] == -1003
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) == 120
    # Another API key has its own budget.
    status, _, _ = await call(http, venue, "GET", "account")
    assert status == 200


async def test_listen_key_create_keepalive_close(
    http: aiohttp.ClientSession, quiet_venue: PaperVenueHandle
) -> None:
    status, body, _ = await call(
        http, quiet_venue, "POST", "userDataStream", signed=False, api_key=quiet_venue.api_key
    )
    assert status == 200
    key = body["listenKey"]
    assert quiet_venue.hub.listen_keys.account(key) == quiet_venue.account
    status, _, _ = await call(
        http,
        quiet_venue,
        "PUT",
        "userDataStream",
        {"listenKey": key},
        signed=False,
        api_key=quiet_venue.api_key,
    )
    assert status == 200
    status, _, _ = await call(
        http,
        quiet_venue,
        "DELETE",
        "userDataStream",
        {"listenKey": key},
        signed=False,
        api_key=quiet_venue.api_key,
    )
    assert status == 200
    status, body, _ = await call(
        http,
        quiet_venue,
        "PUT",
        "userDataStream",
        {"listenKey": key},
        signed=False,
        api_key=quiet_venue.api_key,
    )
    assert status == 400 and body["code"] == -1125
