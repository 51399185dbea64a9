"""Acceptance: the unmodified ccxt ``binance`` client against a running ``stackmm paper-venue``.

The venue runs as its own process on the demo scenario; the client is configured only by URL
overrides and the documented demo keys.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import ccxt
import ccxt.async_support
import pytest

from connectors.paper import ccxt_config
from tests.fixtures.paper import PAPER_DEMO_SCENARIO

REPO = Path(__file__).resolve().parents[1]
_VENUE_LINE = re.compile(r"^(\w+)\s+REST (http://127\.0\.0\.1:\d+/api/v3)\s+WS (ws://127\.0\.0\.1:\d+)$")
DEMO_KEYS = {
    "alpha": ("demo-alpha-key", "demo-alpha-secret"),
    "beta": ("demo-beta-key", "demo-beta-secret"),
    "gamma": ("demo-gamma-key", "demo-gamma-secret"),
}


@dataclass
class RunningVenue:
    process: subprocess.Popen[str]
    urls: dict[str, tuple[str, str]]  # venue -> (rest, ws)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
        """Signal the process, wait for it and close its pipes; returns (exit code, stderr)."""
        self.process.send_signal(sig)
        _, stderr = self.process.communicate(timeout=20)
        return self.process.returncode, stderr

    def config(self, venue: str) -> tuple[str, str, str, str]:
        rest, ws = self.urls[venue]
        key, secret = DEMO_KEYS[venue]
        return rest, ws, key, secret


def start_paper_venue(*extra: str) -> RunningVenue:
    """Run ``stackmm paper-venue`` on free ports and read the URLs it prints."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daemon.cli",
            "paper-venue",
            "--scenario",
            str(PAPER_DEMO_SCENARIO),
            "--port",
            "0",
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    urls: dict[str, tuple[str, str]] = {}
    while len(urls) < 3:
        line = process.stdout.readline()
        if not line:
            _, stderr = process.communicate(timeout=20)
            raise AssertionError(f"paper-venue exited early: {stderr}")
        match = _VENUE_LINE.match(line.strip())
        if match:
            urls[match.group(1)] = (match.group(2), match.group(3))
    return RunningVenue(process, urls)


@pytest.fixture(scope="module")
def running_venue() -> Iterator[RunningVenue]:
    venue = start_paper_venue("--quiet", "--seed", "11")
    yield venue
    venue.stop()


async def test_paper_venue_prints_every_demo_venue(running_venue: RunningVenue) -> None:
    assert set(running_venue.urls) == {"alpha", "beta", "gamma"}
    ports = {rest.rsplit(":", 1)[1] for rest, _ in running_venue.urls.values()}
    assert len(ports) == 3


async def test_ccxt_loads_spot_markets_with_filters_and_reads_the_book(running_venue: RunningVenue) -> None:
    client = ccxt.async_support.binance(ccxt_config(running_venue.config("alpha")))
    try:
        markets = await client.load_markets()
        assert {"BERA/USDT", "BERA/BTC", "BTC/USDT", "ETH/USDT"} <= set(markets)
        bera = markets["BERA/USDT"]
        assert bera["spot"] and bera["active"]
        assert bera["precision"]["price"] == pytest.approx(0.0001)
        assert bera["precision"]["amount"] == pytest.approx(0.01)
        assert bera["limits"]["cost"]["min"] == pytest.approx(5)
        book = await client.fetch_order_book("BERA/USDT")
        assert book["nonce"] > 0
        assert len(book["bids"]) >= 10 and len(book["asks"]) >= 10
        assert book["bids"][0][0] < book["asks"][0][0]
    finally:
        await client.close()


async def test_ccxt_balance_create_cancel_and_open_orders(running_venue: RunningVenue) -> None:
    client = ccxt.async_support.binance(ccxt_config(running_venue.config("beta")))
    try:
        balance = await client.fetch_balance()
        assert balance["total"]["USDT"] > 0 and balance["total"]["BERA"] > 0
        book = await client.fetch_order_book("BERA/USDT")
        price = float(client.price_to_precision("BERA/USDT", book["bids"][0][0] * 0.8))
        free_before = balance["free"]["USDT"]
        order = await client.create_order("BERA/USDT", "limit", "buy", 10, price)
        assert order["status"] == "open"
        open_ids = [o["id"] for o in await client.fetch_open_orders("BERA/USDT")]
        assert order["id"] in open_ids
        locked = await client.fetch_balance()
        assert locked["used"]["USDT"] == pytest.approx(10 * price)
        assert locked["free"]["USDT"] == pytest.approx(free_before - 10 * price)
        canceled = await client.cancel_order(order["id"], "BERA/USDT")
        assert canceled["status"] == "canceled"
        assert order["id"] not in [o["id"] for o in await client.fetch_open_orders("BERA/USDT")]
        assert (await client.fetch_order(order["id"], "BERA/USDT"))["status"] == "canceled"
        assert (await client.fetch_balance())["free"]["USDT"] == pytest.approx(free_before)
        with pytest.raises(ccxt.OrderNotFound):
            await client.cancel_order(order["id"], "BERA/USDT")
    finally:
        await client.close()


async def test_ccxt_post_only_order_that_would_cross_is_rejected(running_venue: RunningVenue) -> None:
    client = ccxt.async_support.binance(ccxt_config(running_venue.config("alpha")))
    try:
        book = await client.fetch_order_book("BERA/USDT")
        crossing = float(client.price_to_precision("BERA/USDT", book["asks"][0][0] * 1.05))
        with pytest.raises(ccxt.OrderImmediatelyFillable):
            await client.create_order("BERA/USDT", "limit", "buy", 10, crossing, {"postOnly": True})
        assert await client.fetch_open_orders("BERA/USDT") == []
    finally:
        await client.close()


async def test_ccxt_marketable_order_fills_and_balance_moves_by_fill_minus_fees(
    running_venue: RunningVenue,
) -> None:
    client = ccxt.async_support.binance(ccxt_config(running_venue.config("gamma")))
    try:
        before = await client.fetch_balance()
        order = await client.create_order("BERA/USDT", "market", "buy", 20)
        assert order["status"] == "closed"
        assert order["filled"] == pytest.approx(20)
        fee_bera = sum(t["fee"]["cost"] for t in order["trades"] if t["fee"]["currency"] == "BERA")
        assert fee_bera == pytest.approx(20 * 0.0007)  # gamma's taker fee, charged on what was bought
        after = await client.fetch_balance()
        assert after["total"]["BERA"] - before["total"]["BERA"] == pytest.approx(20 - fee_bera)
        assert before["total"]["USDT"] - after["total"]["USDT"] == pytest.approx(order["cost"])

        trades = await client.fetch_my_trades("BERA/USDT")
        mine = [t for t in trades if t["order"] == order["id"]]
        assert sum(t["amount"] for t in mine) == pytest.approx(20)
        assert all(t["side"] == "buy" and t["takerOrMaker"] == "taker" for t in mine)
    finally:
        await client.close()


async def test_ccxt_raises_insufficient_funds_and_invalid_symbol(running_venue: RunningVenue) -> None:
    client = ccxt.async_support.binance(ccxt_config(running_venue.config("alpha")))
    try:
        await client.load_markets()
        with pytest.raises(ccxt.InsufficientFunds):
            await client.create_order("BTC/USDT", "limit", "buy", 10, 50000)  # 500k USDT, 20k held
        with pytest.raises(ccxt.BadSymbol):
            await client.public_get_depth({"symbol": "DOGEUSDT"})
    finally:
        await client.close()


def test_paper_venue_stops_cleanly_on_sigint() -> None:
    venue = start_paper_venue("--quiet")
    code, stderr = venue.stop(signal.SIGINT)
    assert code == 0
    assert "Traceback" not in stderr


async def test_running_paper_venue_takes_fault_commands_over_http() -> None:
    venue = start_paper_venue("--quiet")
    try:
        rest, _ = venue.urls["gamma"]
        base = rest.removesuffix("/api/v3")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/paper/faults", json={"force_429": 30}) as resp:
                assert resp.status == 200
            client = ccxt.async_support.binance(ccxt_config(venue.config("gamma")))
            try:
                with pytest.raises(ccxt.DDoSProtection):
                    await client.fetch_time()
            finally:
                await client.close()
            async with http.get(f"{venue.urls['alpha'][0]}/ping") as resp:
                assert resp.status == 200  # faults are per venue
    finally:
        assert venue.stop()[0] == 0


def test_paper_venue_prints_live_lines_unless_quiet() -> None:
    venue = start_paper_venue("--seed", "2")
    try:
        assert venue.process.stdout is not None
        seen: set[tuple[str, str]] = set()
        while len(seen) < 12:  # 3 venues x 4 markets
            line = venue.process.stdout.readline()
            match = re.match(
                r"^(\w+)\s+(\w+/\w+)\s+bid \S+\s+ask \S+\s+spread\s+[\d.]+bps\s+last \S+\s+trades/min \d+",
                line,
            )
            if match:
                seen.add((match.group(1), match.group(2)))
    finally:
        assert venue.stop()[0] == 0
    assert ("gamma", "ETH/USDT") in seen
