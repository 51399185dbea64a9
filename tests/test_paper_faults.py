"""Each fault knob of the paper venue, shown from the client side (ccxt or a raw client)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import ccxt
import orjson
import pytest

from connectors.paper import PaperExchange, PaperVenueHandle, Scenario
from connectors.paper.faults import FaultKnobs
from tests.fixtures.paper import PaperExchangeFactory


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def depth_event(ws: aiohttp.ClientWebSocketResponse, within: float = 5) -> Any:
    msg = await asyncio.wait_for(ws.receive(), within)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def test_drop_connections_disconnects_ccxt_pro_which_then_reconnects(
    paper_venue: PaperVenueHandle, ccxt_client: Callable[..., Any]
) -> None:
    client = ccxt_client(paper_venue, pro=True)
    await client.watch_order_book("BERA/USDT")
    pending = asyncio.create_task(client.watch_order_book("BERA/USDT"))
    await paper_venue.faults.drop_connections()
    with pytest.raises(ccxt.NetworkError):
        while True:  # updates already in flight may still resolve before the close lands
            await asyncio.wait_for(pending, 5)
            pending = asyncio.create_task(client.watch_order_book("BERA/USDT"))
    book = await asyncio.wait_for(client.watch_order_book("BERA/USDT"), 10)
    assert book["bids"] and book["asks"]


async def test_depth_gap_makes_ccxt_pro_detect_a_sequence_break(
    paper_venue: PaperVenueHandle, ccxt_client: Callable[..., Any]
) -> None:
    client = ccxt_client(paper_venue, pro=True)
    for _ in range(3):
        # Past the first update: the REST snapshot may already cover changes still in flight,
        # and a gap among those would be invisible (correctly) to the client.
        await client.watch_order_book("BERA/USDT")
    paper_venue.faults.gap_next_depth(3)
    with pytest.raises(ccxt.ChecksumError):
        for _ in range(200):
            await asyncio.wait_for(client.watch_order_book("BERA/USDT"), 5)


async def test_depth_gap_skips_update_ids_on_the_wire(
    paper_venue: PaperVenueHandle, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{paper_venue.ws_url}/ws/berausdt@depth@100ms") as ws:
        prev_u = (await depth_event(ws))["u"]
        paper_venue.faults.gap_next_depth(4, "BERA/USDT")
        event = await depth_event(ws)
    assert event["U"] >= prev_u + 1 + 4


def test_gap_for_every_symbol_is_handed_to_each_symbol_once() -> None:
    faults = FaultKnobs()
    faults.gap_next_depth(3)
    faults.gap_next_depth(2, "BERA/USDT")
    assert faults.take_gap("BERA/USDT") == 5  # its own gap plus the one for every symbol
    assert faults.take_gap("BTC/USDT") == 3  # the first symbol did not use up the others' share
    assert faults.take_gap("BERA/USDT") == 0 and faults.take_gap("BTC/USDT") == 0
    faults.gap_next_depth(1)
    assert [faults.take_gap(s) for s in ("BTC/USDT", "BERA/USDT", "BTC/USDT")] == [1, 1, 0]


async def test_depth_gap_without_a_symbol_skips_update_ids_of_every_symbol(
    paper_venue: PaperVenueHandle, http: aiohttp.ClientSession
) -> None:
    streams = ("berausdt@depth@100ms", "btcusdt@depth@100ms")
    async with http.ws_connect(f"{paper_venue.ws_url}/stream?streams={'/'.join(streams)}") as ws:
        last_u: dict[str, int] = {}
        while len(last_u) < len(streams):  # one event of each symbol before the gap
            msg = await depth_event(ws)
            last_u[msg["stream"]] = msg["data"]["u"]
        paper_venue.faults.gap_next_depth(4)
        gaps: dict[str, int] = {}
        # Events flushed before the request may still be in flight and arrive in sequence; the
        # first event of a symbol that does not follow its previous one carries the gap.
        while len(gaps) < len(streams):
            msg = await depth_event(ws)
            stream, data = msg["stream"], msg["data"]
            if data["U"] != last_u[stream] + 1:
                gaps.setdefault(stream, data["U"] - last_u[stream] - 1)
            last_u[stream] = data["u"]
    assert all(gap >= 4 for gap in gaps.values()), gaps


async def test_stall_holds_data_but_keeps_the_connection_open(
    paper_venue: PaperVenueHandle, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{paper_venue.ws_url}/ws/berausdt@depth@100ms") as ws:
        prev_u = (await depth_event(ws))["u"]
        paper_venue.faults.stall(None)
        # Drain what was already in flight, then nothing more arrives while stalled.
        with pytest.raises(TimeoutError):
            while True:
                prev_u = (await depth_event(ws, within=0.5))["u"]
        assert not ws.closed
        assert paper_venue.faults.stalled
        paper_venue.faults.unstall()
        event = await depth_event(ws)
        # Held data is delivered in order: the stream resumes without a gap.
        assert event["U"] == prev_u + 1


async def test_timed_stall_ends_by_itself(paper_venue: PaperVenueHandle, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{paper_venue.ws_url}/ws/berausdt@depth@100ms") as ws:
        await depth_event(ws)
        paper_venue.faults.stall(0.3)
        await paper_venue.faults.wait_unstalled()
        assert not paper_venue.faults.stalled
        await depth_event(ws)


@pytest.mark.parametrize(
    ("after_share", "placed"),
    [(0.0, False), (1.0, True)],
    ids=["fails-before-the-engine", "fails-after-the-engine"],
)
async def test_failing_order_post_happens_before_or_after_the_engine(
    paper_exchange: PaperExchange, ccxt_client: Callable[..., Any], after_share: float, placed: bool
) -> None:
    paper_exchange.pause_market()
    venue = paper_exchange.venues["alpha"]
    client = ccxt_client(venue)
    await client.load_markets()
    venue.faults.rest_fail_rate = 1.0
    venue.faults.rest_fail_mode = "5xx"
    venue.faults.rest_fail_after_share = after_share
    with pytest.raises(ccxt.NetworkError):  # 503 -1007: execution status unknown
        await client.create_order("BERA/USDT", "limit", "buy", 10, 1.5, {"clientOrderId": "fault-probe-1"})
    venue.faults.rest_fail_rate = 0.0
    open_ids = [o["clientOrderId"] for o in await client.fetch_open_orders("BERA/USDT")]
    assert ("fault-probe-1" in open_ids) is placed


async def test_rest_5xx_reaches_ccxt_as_a_network_error(
    paper_venue: PaperVenueHandle, ccxt_client: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    paper_venue.faults.rest_fail_rate = 1.0
    async with http.get(f"{paper_venue.rest_url}/time") as resp:
        assert resp.status == 503
        assert (await resp.json())["code"] == -1007
    with pytest.raises(ccxt.NetworkError):
        await ccxt_client(paper_venue).fetch_time()


async def test_rest_timeout_holds_the_response_past_the_client_timeout(
    paper_venue: PaperVenueHandle, ccxt_client: Callable[..., Any]
) -> None:
    paper_venue.faults.rest_fail_rate = 1.0
    paper_venue.faults.rest_fail_mode = "timeout"
    paper_venue.faults.timeout_hold_s = 10.0
    with pytest.raises(ccxt.RequestTimeout):
        await ccxt_client(paper_venue, timeout=300).fetch_time()


async def test_rest_delay_slows_every_call(
    paper_venue: PaperVenueHandle, ccxt_client: Callable[..., Any]
) -> None:
    paper_venue.faults.rest_delay_s = 0.3
    client = ccxt_client(paper_venue)
    started = time.monotonic()
    await client.fetch_time()
    assert time.monotonic() - started >= 0.3


async def test_forced_429_makes_ccxt_back_off(
    paper_venue: PaperVenueHandle, ccxt_client: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    paper_venue.faults.force_429(5.0)
    async with http.get(f"{paper_venue.rest_url}/ping") as resp:
        assert resp.status == 429
        assert 1 <= int(resp.headers["Retry-After"]) <= 6
        assert (await resp.json())["code"] == -1003
    with pytest.raises(ccxt.DDoSProtection):
        await ccxt_client(paper_venue).fetch_time()


async def test_scenario_schedule_drops_connections_periodically(
    paper_scenario: Scenario, paper_exchange_factory: PaperExchangeFactory, http: aiohttp.ClientSession
) -> None:
    paper_scenario.venues[0].faults.drop_every_s = 0.3
    exchange = await paper_exchange_factory(paper_scenario)
    venue = exchange.venues["alpha"]
    async with http.ws_connect(f"{venue.ws_url}/ws/berausdt@depth@100ms") as ws:
        while True:
            msg = await asyncio.wait_for(ws.receive(), 5)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


async def test_scenario_sets_starting_fault_knobs(
    paper_scenario: Scenario, paper_exchange_factory: PaperExchangeFactory, http: aiohttp.ClientSession
) -> None:
    paper_scenario.venues[0].faults.rest_fail_rate = 1.0
    exchange = await paper_exchange_factory(paper_scenario)
    async with http.get(f"{exchange.venues['alpha'].rest_url}/ping") as resp:
        assert resp.status == 503
    async with http.get(f"{exchange.venues['beta'].rest_url}/ping") as resp:
        assert resp.status == 200


async def test_control_endpoint_turns_knobs_at_run_time(
    paper_exchange: PaperExchange, http: aiohttp.ClientSession
) -> None:
    venue = paper_exchange.venues["alpha"]
    base = venue.rest_url.removesuffix("/api/v3")
    async with http.ws_connect(f"{venue.ws_url}/ws/berausdt@depth@100ms") as ws:
        await depth_event(ws)
        command = {
            "rest_fail_rate": 0.25,
            "rest_fail_mode": "timeout",
            "stall": None,
            "drop_connections": True,
        }
        async with http.post(f"{base}/paper/faults", json=command) as resp:
            status = await resp.json()
        assert resp.status == 200
        assert status["faults"]["rest_fail_rate"] == 0.25 and status["faults"]["rest_fail_mode"] == "timeout"
        assert status["faults"]["stalled"] is True
        while (await asyncio.wait_for(ws.receive(), 5)).type is aiohttp.WSMsgType.TEXT:
            pass  # data queued before the stall may still be flushed by the close
    assert ws.closed
    async with http.post(f"{base}/paper/faults", json={"unstall": True, "rest_fail_rate": 0}) as resp:
        assert (await resp.json())["faults"]["stalled"] is False
    async with http.post(f"{base}/paper/market", json={"paused": True}) as resp:
        assert (await resp.json())["market_paused"] is True
    assert paper_exchange.market_paused
    async with http.post(f"{base}/paper/faults", json={"gap_next_depth": 0}) as resp:
        assert resp.status == 400
