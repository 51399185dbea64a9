"""Paper venue REST throughput: signed order place+cancel round trips over real HTTP.

Prints round trips per second through the server (raw aiohttp client, keep-alive) and,
as the baseline measured in the same run, the same place+cancel straight on the matching
engine; the ratio is the cost of the Binance REST layer (HTTP, signing, weights, JSON).

    .venv/bin/python bench/paper_venue_rest.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

from connectors.paper import PaperExchange, load_scenario
from connectors.paper.auth import sign
from connectors.paper.engine import OrderType
from strategies.types import Side

SCENARIO = Path(__file__).resolve().parents[1] / "config" / "paper" / "test.yaml"


def engine_baseline(exchange: PaperExchange, n: int) -> float:
    engine = exchange.venues["alpha"].engine
    started = time.perf_counter()
    for _ in range(n):
        order, _ = engine.place(
            "demo", "BERA/USDT", Side.BUY, OrderType.LIMIT, Decimal("10"), Decimal("1.0000")
        )
        engine.cancel("demo", "BERA/USDT", order.order_id)
    return n / (time.perf_counter() - started)


async def over_http(exchange: PaperExchange, n: int) -> float:
    venue = exchange.venues["alpha"]
    headers = {"X-MBX-APIKEY": venue.api_key, "Content-Type": "application/x-www-form-urlencoded"}

    def signed(params: dict[str, str]) -> str:
        payload = urlencode({**params, "timestamp": int(time.time() * 1000)})
        return payload + "&signature=" + sign(payload, venue.secret)

    order = {
        "symbol": "BERAUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "10",
        "price": "1.0000",
    }
    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        for _ in range(n):
            async with http.post(f"{venue.rest_url}/order", data=signed(order), headers=headers) as resp:
                order_id = (await resp.json())["orderId"]
            query = signed({"symbol": "BERAUSDT", "orderId": str(order_id)})
            async with http.delete(f"{venue.rest_url}/order?{query}", headers=headers) as resp:
                assert resp.status == 200, await resp.text()
        return n / (time.perf_counter() - started)


async def main(n: int) -> None:
    scenario = load_scenario(SCENARIO)
    for venue in scenario.venues:
        venue.weight_limit_per_minute = 10**9
    async with PaperExchange(scenario, seed=1) as exchange:
        exchange.pause_market()
        baseline = engine_baseline(exchange, n)
        http_rate = await over_http(exchange, n)
    print(f"engine place+cancel (baseline): {baseline:10.0f} round trips/s")
    print(f"REST place+cancel over HTTP:    {http_rate:10.0f} round trips/s")
    print(f"ratio REST/engine:              {http_rate / baseline:10.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    asyncio.run(main(parser.parse_args().n))
