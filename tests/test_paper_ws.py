"""The paper venue's Binance WebSocket streams, with ccxt pro and with a raw client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from connectors.paper import PaperExchange, PaperVenueHandle

BOOK_FLOW_SECONDS = 30.0
CHECKPOINT_EVERY_S = 3.0


def venue_book(venue: PaperVenueHandle, symbol: str) -> tuple[list[list[float]], list[list[float]], int]:
    bids, asks, last_id = venue.engine.depth(symbol, 100_000)
    return [[float(p), float(q)] for p, q in bids], [[float(p), float(q)] for p, q in asks], last_id


@pytest.mark.slow
async def test_watch_order_book_equals_the_venue_book_at_checkpoints_over_30s_of_flow(
    paper_exchange: PaperExchange, ccxt_client: Callable[..., Any]
) -> None:
    venue = paper_exchange.venues["alpha"]
    client = ccxt_client(venue, pro=True)
    symbol = "BERA/USDT"
    book = await client.watch_order_book(symbol)
    first_nonce = book["nonce"]
    checkpoints = 0
    updates = 0
    deadline = time.monotonic() + BOOK_FLOW_SECONDS
    while time.monotonic() < deadline:
        next_checkpoint = min(deadline, time.monotonic() + CHECKPOINT_EVERY_S)
        while time.monotonic() < next_checkpoint:
            book = await asyncio.wait_for(client.watch_order_book(symbol), 5)
            updates += 1
        # Checkpoint: freeze the market, let the client catch up to the venue's last update id.
        paper_exchange.pause_market()
        bids, asks, last_id = venue_book(venue, symbol)
        while book["nonce"] < last_id:
            book = await asyncio.wait_for(client.watch_order_book(symbol), 5)
        assert book["nonce"] == last_id
        assert book["bids"] == bids
        assert book["asks"] == asks
        checkpoints += 1
        paper_exchange.resume_market()
    assert checkpoints >= 10
    assert updates > 100
    assert book["nonce"] - first_nonce > 500  # the book really moved between checkpoints


async def test_watch_orders_receives_the_fill_of_an_order(
    paper_venue: PaperVenueHandle, ccxt_client: Callable[..., Any]
) -> None:
    pro = ccxt_client(paper_venue, pro=True)
    rest = ccxt_client(paper_venue)
    watch = asyncio.create_task(pro.watch_orders("BERA/USDT"))
    await asyncio.wait_for(paper_venue.hub.wait_for_user_stream(paper_venue.account), 10)
    order = await rest.create_order("BERA/USDT", "market", "buy", 12)
    seen: dict[str, Any] = {}
    while seen.get("status") != "closed":
        updates = await asyncio.wait_for(watch, 5)
        seen = next((o for o in updates if o["id"] == order["id"]), seen)
        watch = asyncio.create_task(pro.watch_orders("BERA/USDT"))
    watch.cancel()
    assert seen["filled"] == pytest.approx(12)
    assert seen["clientOrderId"] == order["clientOrderId"]
    assert seen["side"] == "buy"


async def test_watch_balance_sees_the_fill_change_the_balance(
    paper_venue: PaperVenueHandle, ccxt_client: Callable[..., Any]
) -> None:
    pro = ccxt_client(paper_venue, pro=True)
    rest = ccxt_client(paper_venue)
    watch = asyncio.create_task(pro.watch_balance())
    await asyncio.wait_for(paper_venue.hub.wait_for_user_stream(paper_venue.account), 10)
    await rest.create_order("BERA/USDT", "market", "sell", 10)
    balance = await asyncio.wait_for(watch, 5)
    assert balance["BERA"]["free"] == pytest.approx(float(paper_venue.engine.balances("demo")["BERA"].free))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def receive(ws: aiohttp.ClientWebSocketResponse, within: float = 5) -> Any:
    msg = await asyncio.wait_for(ws.receive(), within)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def test_combined_depth_stream_is_wrapped_and_gapless_and_rebuilds_the_book(
    paper_exchange: PaperExchange, http: aiohttp.ClientSession
) -> None:
    venue = paper_exchange.venues["alpha"]
    url = f"{venue.ws_url}/stream?streams=berausdt@depth@100ms"
    async with http.ws_connect(url) as ws:
        first = await receive(ws)
        assert first["stream"] == "berausdt@depth@100ms"
        async with http.get(
            f"{venue.rest_url}/depth", params={"symbol": "BERAUSDT", "limit": "1000"}
        ) as resp:
            snapshot = await resp.json()
        book = {
            "b": {Decimal(p): Decimal(q) for p, q in snapshot["bids"]},
            "a": {Decimal(p): Decimal(q) for p, q in snapshot["asks"]},
        }
        last = snapshot["lastUpdateId"]
        prev_u = first["data"]["u"]
        events = [first["data"]]
        for _ in range(20):
            event = (await receive(ws))["data"]
            assert event["e"] == "depthUpdate" and event["s"] == "BERAUSDT"
            assert event["U"] == prev_u + 1  # Binance's continuity rule
            prev_u = event["u"]
            events.append(event)
        paper_exchange.pause_market()
        _, _, venue_last = venue.engine.depth("BERA/USDT")
        while prev_u < venue_last:
            event = (await receive(ws))["data"]
            assert event["U"] == prev_u + 1
            prev_u = event["u"]
            events.append(event)
    applied = [e for e in events if e["u"] > last]
    assert applied[0]["U"] <= last + 1 <= applied[0]["u"]
    for event in applied:
        for side in ("b", "a"):
            for p, q in event[side]:
                if Decimal(q) == 0:
                    book[side].pop(Decimal(p), None)
                else:
                    book[side][Decimal(p)] = Decimal(q)
    bids, asks, _ = venue.engine.depth("BERA/USDT", 100_000)
    assert sorted(book["b"].items(), reverse=True) == bids
    assert sorted(book["a"].items()) == asks


async def test_subscribe_unsubscribe_and_list_on_raw_ws(
    paper_venue: PaperVenueHandle, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{paper_venue.ws_url}/ws") as ws:
        await ws.send_str(
            orjson.dumps(
                {"method": "SUBSCRIBE", "params": ["berausdt@trade", "berausdt@bookTicker"], "id": 1}
            ).decode()
        )
        assert await receive(ws) == {"result": None, "id": 1}
        await ws.send_str(
            orjson.dumps({"method": "UNSUBSCRIBE", "params": ["berausdt@bookTicker"], "id": 2}).decode()
        )
        await ws.send_str(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}).decode())
        replies: dict[int, Any] = {}
        while 3 not in replies:
            message = await receive(ws)
            if "id" in message:
                replies[message["id"]] = message
        assert replies[3]["result"] == ["berausdt@trade"]
        await ws.send_str(
            orjson.dumps({"method": "SUBSCRIBE", "params": ["dogeusdt@trade"], "id": 4}).decode()
        )
        while True:
            message = await receive(ws)
            if message.get("id") == 4:
                break
        assert message["error"]["code"] == 2


async def test_trade_and_book_ticker_streams(
    paper_exchange: PaperExchange, http: aiohttp.ClientSession
) -> None:
    venue = paper_exchange.venues["alpha"]
    async with http.ws_connect(f"{venue.ws_url}/ws/berausdt@trade/berausdt@bookTicker") as ws:
        await venue.hub.wait_for_subscriber("berausdt@trade")
        paper_exchange.pause_market()
        trade_stream: list[Any] = []
        tickers: list[Any] = []
        async with http.post(
            f"{venue.rest_url}/order",
            data=_signed(venue, {"symbol": "BERAUSDT", "side": "BUY", "type": "MARKET", "quantity": "50"}),
            headers={"X-MBX-APIKEY": venue.api_key},
        ) as resp:
            order = await resp.json()
        assert order["status"] == "FILLED", order
        trade_ids = {f["tradeId"] for f in order["fills"]}
        bids, asks, _ = venue.engine.depth("BERA/USDT", 1)
        top = (*bids[0], *asks[0])
        # The venue's top of book after the sweep reaches the client as a bookTicker.
        while not trade_ids <= {t["t"] for t in trade_stream} or not (
            tickers and tuple(Decimal(tickers[-1][k]) for k in ("b", "B", "a", "A")) == top
        ):
            message = await receive(ws)
            (trade_stream if message.get("e") == "trade" else tickers).append(message)
    trade = next(t for t in trade_stream if t["t"] in trade_ids)
    assert trade["s"] == "BERAUSDT" and trade["m"] is False  # the buyer took liquidity
    assert tickers[-1]["s"] == "BERAUSDT"


async def test_listen_key_user_stream_gets_execution_reports_and_balances(
    paper_venue: PaperVenueHandle, http: aiohttp.ClientSession
) -> None:
    headers = {"X-MBX-APIKEY": paper_venue.api_key}
    async with http.post(f"{paper_venue.rest_url}/userDataStream", headers=headers) as resp:
        listen_key = (await resp.json())["listenKey"]
    async with http.ws_connect(f"{paper_venue.ws_url}/ws/{listen_key}") as ws:
        body = _signed(
            paper_venue,
            {
                "symbol": "BERAUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "10",
                "price": "1.0000",
            },
        )
        async with http.post(f"{paper_venue.rest_url}/order", data=body, headers=headers) as resp:
            order = await resp.json()
        report = await receive(ws)
        position = await receive(ws)
    assert report["e"] == "executionReport"
    assert (report["i"], report["x"], report["X"], report["S"]) == (order["orderId"], "NEW", "NEW", "BUY")
    assert position["e"] == "outboundAccountPosition"
    usdt = next(b for b in position["B"] if b["a"] == "USDT")
    assert Decimal(usdt["l"]) == Decimal("10")


async def test_ws_api_user_stream_rejects_a_bad_signature(
    paper_venue: PaperVenueHandle, http: aiohttp.ClientSession
) -> None:
    params = {"apiKey": paper_venue.api_key, "timestamp": int(time.time() * 1000), "signature": "00" * 32}
    async with http.ws_connect(f"{paper_venue.ws_url}/ws-api/v3") as ws:
        await ws.send_str(
            orjson.dumps(
                {"id": "1", "method": "userDataStream.subscribe.signature", "params": params}
            ).decode()
        )
        reply = await receive(ws)
    assert reply["status"] == 400 and reply["error"]["code"] == -1022


def _signed(venue: PaperVenueHandle, params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    from connectors.paper.auth import sign

    payload = urlencode({**params, "timestamp": int(time.time() * 1000)})
    return payload + "&signature=" + sign(payload, venue.secret)
