"""``stackmm paper-venue``: serve the scenario's Binance-compatible paper venues on 127.0.0.1.

Prints one line per venue (``alpha  REST http://127.0.0.1:18401/api/v3  WS ws://127.0.0.1:18401``),
then, unless ``--quiet``, a live line per venue and market every second: best bid and ask,
spread, last trade and trades per minute. Stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections import deque
from decimal import Decimal
from pathlib import Path

from connectors.paper.engine import Balance, BookChange, Execution, Order
from connectors.paper.scenario import ScenarioError, load_scenario
from connectors.paper.server import PaperExchange, PaperVenueHandle
from daemon.logging import configure_logging

DEFAULT_SCENARIO = Path("config/paper/demo.yaml")
DEFAULT_BASE_PORT = 18401
STATUS_INTERVAL_S = 1.0


def build_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"stackmm {command}",
        description="Serve local Binance Spot compatible paper venues (REST + WebSocket) on 127.0.0.1.",
    )
    parser.add_argument(
        "--scenario", type=Path, default=DEFAULT_SCENARIO, help=f"scenario YAML (default {DEFAULT_SCENARIO})"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_BASE_PORT,
        help=f"port of the first venue; the next venues take the following ports "
        f"(default {DEFAULT_BASE_PORT}; 0 = any free ports)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the simulated flow (default 0)")
    parser.add_argument("--quiet", action="store_true", help="print only the venue URLs, no live lines")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level (stderr)",
    )
    return parser


class TradeCounter:
    """Engine listener keeping the last trade and the trades of the last minute per market."""

    def __init__(self) -> None:
        self.last: dict[str, Decimal] = {}
        self._times: dict[str, deque[float]] = {}

    def on_book_change(self, change: BookChange) -> None:
        return

    def on_trade(self, execution: Execution) -> None:
        self.last[execution.symbol] = execution.price
        self._times.setdefault(execution.symbol, deque()).append(execution.ts)

    def on_order_update(self, order: Order, execution: Execution | None) -> None:
        return

    def on_balance_update(self, account: str, assets: dict[str, Balance]) -> None:
        return

    def per_minute(self, symbol: str, now: float) -> int:
        times = self._times.get(symbol)
        if not times:
            return 0
        while times and times[0] < now - 60:
            times.popleft()
        return len(times)


def status_lines(handle: PaperVenueHandle, counter: TradeCounter, now: float) -> list[str]:
    """One compact line per market of a venue."""
    lines = []
    for symbol in handle.engine.symbols:
        bid, ask = handle.engine.best_bid_ask(symbol)
        if bid is not None and ask is not None:
            spread_bps = float((ask - bid) / ((ask + bid) / 2)) * 10_000
            book = f"bid {bid:<14} ask {ask:<14} spread {spread_bps:6.1f}bps"
        else:
            book = f"bid {bid or '-':<14} ask {ask or '-':<14} spread    -  "
        last = counter.last.get(symbol)
        lines.append(
            f"{handle.name:<8} {symbol:<10} {book}  last {last if last is not None else '-':<14} "
            f"trades/min {counter.per_minute(symbol, now)}"
        )
    return lines


async def serve(scenario_path: Path, port: int, seed: int, quiet: bool) -> int:
    scenario = load_scenario(scenario_path)
    exchange = PaperExchange(scenario, seed=seed, base_port=port)
    counters: dict[str, TradeCounter] = {}
    for name, handle in exchange.venues.items():
        counters[name] = TradeCounter()
        handle.engine.listeners.append(counters[name])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await exchange.start()
    except OSError as exc:
        await exchange.stop()
        print(f"stackmm paper-venue: cannot listen: {exc}", file=sys.stderr)
        return 1
    try:
        for handle in exchange.venues.values():
            print(f"{handle.name:<8} REST {handle.rest_url}  WS {handle.ws_url}", flush=True)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), STATUS_INTERVAL_S)
            except TimeoutError:
                if not quiet:
                    now = exchange.clock.time()
                    lines = [""]
                    for name, handle in exchange.venues.items():
                        lines += status_lines(handle, counters[name], now)
                    print("\n".join(lines), flush=True)
    finally:
        await exchange.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


def main(argv: list[str], command: str = "paper-venue") -> int:
    args = build_parser(command).parse_args(argv)
    # Logs go to stderr: stdout carries only the venue URLs and the live lines, for scripts.
    configure_logging(level=args.log_level, stream=sys.stderr)
    try:
        return asyncio.run(serve(args.scenario, args.port, args.seed, args.quiet))
    except ScenarioError as exc:
        print(f"stackmm {command}: {exc}", file=sys.stderr)
        return 2
