"""Matching-engine throughput: mixed add/cancel/match operations per second, in process.

Workload on BERA/USDT with a realistic book (about 60 levels a side, several orders a level):
60 % passive limit adds, 30 % cancels of a random open order, 10 % marketable orders (market
orders and crossing limits, some sweeping a few levels). Operations are generated before the
clock starts; the book stays in a steady state because adds replenish what takes consume.

Baseline, measured in the same run: a trivial loop doing the same number of dict inserts and
deletes, so the ratio says how many plain-Python dict operations one engine operation costs.
Target: at least 50,000 operations per second, with and without a listener; the figure that
counts is the one with a listener, since the paper venue server always attaches one (here a
listener that ignores what it is given, so the figure is the cost of building the events).

Rates are given in CPU time of this process (``time.process_time``), which is what the engine
costs, and in wall time, which on a shared machine also includes waiting for a core. Each
configuration runs several times, alternating with the others so that a burst of load on the
machine hits them alike; the median is the headline and the verdict, the best run (as
``timeit`` reports) shows what a quiet machine gives. Every run starts from a fresh engine on
the same operations.

Run: .venv/bin/python bench/matching_engine.py [--ops N] [--runs R]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from decimal import Decimal

from connectors.paper.engine import (
    Balance,
    BookChange,
    Execution,
    MatchingEngine,
    Order,
    OrderRejected,
    OrderType,
    SymbolSpec,
    TimeInForce,
)
from strategies.clock import ManualClock
from strategies.types import Side

SPEC = SymbolSpec(
    "BERA/USDT", "BERA", "USDT", Decimal("0.0001"), Decimal("0.01"), Decimal("0.01"), Decimal("5")
)
MID_TICKS = 25_000  # 2.5000
HALF_RANGE = 60  # levels each side that adds land on
TARGET_OPS_PER_S = 50_000


class NullListener:
    """Receives every event and does nothing: the cost of building events, not of using them."""

    def on_book_change(self, change: BookChange) -> None:
        pass

    def on_trade(self, execution: Execution) -> None:
        pass

    def on_order_update(self, order: Order, execution: Execution | None) -> None:
        pass

    def on_balance_update(self, account: str, assets: dict[str, Balance]) -> None:
        pass


Op = tuple[int, str, Side, Decimal, Decimal | None, float]


def make_ops(n: int, seed: int) -> list[Op]:
    """(kind, account, side, qty, price, pick): kind 0 add, 1 cancel, 2 marketable."""
    rng = random.Random(seed)
    tick, step = SPEC.tick, SPEC.step
    prices = {t: tick * t for t in range(MID_TICKS - 2 * HALF_RANGE, MID_TICKS + 2 * HALF_RANGE)}
    ops: list[Op] = []
    for _ in range(n):
        roll = rng.random()
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        account = "mm1" if rng.random() < 0.5 else "mm2"
        if roll < 0.6:
            offset = 1 + int(rng.expovariate(1 / 15)) % HALF_RANGE
            ticks = MID_TICKS - offset if side is Side.BUY else MID_TICKS + offset
            ops.append((0, account, side, step * rng.randint(300, 5000), prices[ticks], 0.0))
        elif roll < 0.9:
            ops.append((1, account, side, step, None, rng.random()))
        else:
            qty = step * rng.randint(500, 20_000)
            if rng.random() < 0.5:
                ops.append((2, "taker", side, qty, None, 0.0))
            else:  # crossing limit through a few levels; the rest rests
                ticks = MID_TICKS + 5 if side is Side.BUY else MID_TICKS - 5
                ops.append((2, "taker", side, qty, prices[ticks], 0.0))
    return ops


def fresh_engine(with_listener: bool) -> tuple[MatchingEngine, list[int]]:
    engine = MatchingEngine([SPEC], ManualClock())
    for account in ("mm1", "mm2", "taker"):
        engine.deposit(account, "USDT", Decimal("1000000000"))
        engine.deposit(account, "BERA", Decimal("1000000000"))
    open_ids: list[int] = []
    rng = random.Random(1)
    for offset in range(1, HALF_RANGE + 1):  # a deep book before timing starts
        for _ in range(3):
            for side, ticks in ((Side.BUY, MID_TICKS - offset), (Side.SELL, MID_TICKS + offset)):
                qty = SPEC.step * rng.randint(300, 5000)
                order, _ = engine.place("mm1", SPEC.symbol, side, OrderType.LIMIT, qty, SPEC.tick * ticks)
                open_ids.append(order.order_id)
    if with_listener:
        engine.listeners.append(NullListener())
    return engine, open_ids


Timing = tuple[float, float]  # (cpu seconds, wall seconds)


def run_engine(ops: list[Op], with_listener: bool) -> tuple[Timing, int]:
    engine, open_ids = fresh_engine(with_listener)
    owner = {oid: "mm1" for oid in open_ids}
    symbol = SPEC.symbol
    limit, market = OrderType.LIMIT, OrderType.MARKET
    executions = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for kind, account, side, qty, price, pick in ops:
        if kind == 0:
            order, _ = engine.place(account, symbol, side, limit, qty, price)
            open_ids.append(order.order_id)
            owner[order.order_id] = account
        elif kind == 1:
            # Swap-remove a random id; ids whose order was taken meanwhile are skipped over.
            while open_ids:
                i = int(pick * len(open_ids))
                oid = open_ids[i]
                open_ids[i] = open_ids[-1]
                open_ids.pop()
                acct = owner.pop(oid)
                if engine.is_open(acct, oid):
                    engine.cancel(acct, symbol, oid)
                    break
        else:
            try:
                order, execs = engine.place(
                    account, symbol, side, limit if price is not None else market, qty, price, TimeInForce.GTC
                )
            except OrderRejected:
                continue
            executions += len(execs)
            if price is not None and order.status.is_open:
                open_ids.append(order.order_id)
                owner[order.order_id] = account
    elapsed = (time.process_time() - cpu, time.perf_counter() - wall)
    bids, asks, _ = engine.depth(symbol, 1000)
    assert bids and asks and bids[0][0] < asks[0][0], "book emptied or crossed: workload not steady"
    return elapsed, executions


def run_baseline(n: int) -> Timing:
    """The same number of operations as plain dict inserts (60 %) and deletes (the rest)."""
    book: dict[int, int] = {}
    keys: list[int] = []
    rng = random.Random(2)
    picks = [rng.random() for _ in range(n)]
    cpu, wall = time.process_time(), time.perf_counter()
    for i, pick in enumerate(picks):
        if pick < 0.6 or not keys:
            book[i] = i
            keys.append(i)
        else:
            j = int(pick * len(keys)) % len(keys)
            key = keys[j]
            keys[j] = keys[-1]
            keys.pop()
            del book[key]
    return time.process_time() - cpu, time.perf_counter() - wall


def rate_line(label: str, n: int, runs: list[Timing], base_rate: float | None) -> tuple[str, float]:
    """One figure: median and best rates, CPU and wall; the median CPU rate is returned."""
    cpu = statistics.median(t[0] for t in runs)
    wall = statistics.median(t[1] for t in runs)
    best_cpu = min(t[0] for t in runs)
    best_wall = min(t[1] for t in runs)
    line = (
        f"{label:<24}{n / cpu:>10,.0f} cpu {n / wall:>10,.0f} wall   "
        f"best {n / best_cpu:>9,.0f} cpu {n / best_wall:>9,.0f} wall  {1e6 * cpu / n:5.1f} µs/op"
    )
    if base_rate is not None:
        line += f"  ratio to baseline 1/{base_rate / (n / cpu):.0f}"
    return line, n / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50_000, help="operations per run")
    parser.add_argument("--runs", type=int, default=7, help="runs per configuration")
    args = parser.parse_args()
    n = args.ops
    ops = make_ops(n, seed=42)

    baseline: list[Timing] = []
    engine_runs: dict[bool, list[Timing]] = {False: [], True: []}
    executions = 0
    for _ in range(args.runs):  # interleaved, so load on the machine hits every configuration
        baseline.append(run_baseline(n))
        for with_listener in (False, True):
            timing, executions = run_engine(ops, with_listener)
            engine_runs[with_listener].append(timing)

    print(f"{n:,} operations per run, {args.runs} runs each; ops/s, median of the runs, then the best run")
    line, base_rate = rate_line("baseline dict ins/del", n, baseline, None)
    print(line)
    verdicts = []
    for with_listener, label in ((False, "engine, no listener"), (True, "engine + null listener")):
        line, rate = rate_line(label, n, engine_runs[with_listener], base_rate)
        verdict = "OK" if rate >= TARGET_OPS_PER_S else "BELOW TARGET"
        verdicts.append(verdict)
        print(f"{line}  {verdict}")
    print(
        f"{executions} executions per run; target {TARGET_OPS_PER_S:,} ops/s cpu (median), "
        f"with the listener: {verdicts[1]}"
    )


if __name__ == "__main__":
    main()
