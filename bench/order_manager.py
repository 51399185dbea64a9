"""Order manager decision time: a target set of 30 quotes against 30 live orders.

Measures ``connectors.execution.planner.plan`` (the whole decision the order manager makes
per target set: keep/cancel/place, one order per slot, no self-cross) in three situations
(nothing moved, half moved, everything moved) and, in the same run, a naive baseline that
matches each target by scanning every live order (no crossing checks). Target: median
under 200 microseconds.

    .venv/bin/python bench/order_manager.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from decimal import Decimal

from connectors.execution.orders import OrderRecord, OrderState
from connectors.execution.planner import fits, plan
from strategies.types import QuoteTarget, Side

LEVELS = 15  # 15 bids + 15 asks = 30 quotes
TICK = Decimal("0.0001")
MID = Decimal("2.5000")
REPEAT = 5000


def targets(shift_ticks: int, moved_levels: int) -> list[QuoteTarget]:
    out = []
    for level in range(LEVELS):
        shift = TICK * shift_ticks if level < moved_levels else Decimal(0)
        gap = TICK * (5 + 3 * level)
        for side, price in ((Side.BUY, MID - gap + shift), (Side.SELL, MID + gap + shift)):
            out.append(
                QuoteTarget(
                    "alpha", "BERA/USDT", side, price, Decimal("10"), "tob", level, refresh_tolerance_bps=2.0
                )
            )
    return out


def live_orders() -> list[OrderRecord]:
    out = []
    for i, t in enumerate(targets(0, 0)):
        out.append(
            OrderRecord(
                f"bench-x-{i}",
                t.venue,
                t.symbol,
                t.side,
                t.price,
                t.size,
                t.line_id,
                t.level,
                OrderState.OPEN,
                created_mono=0.0,
            )
        )
    return out


def naive(wanted: list[QuoteTarget], live: list[OrderRecord], now: float) -> tuple[int, int]:
    """Baseline: for each target, scan all live orders for its slot; no crossing checks."""
    cancels = places = 0
    for t in wanted:
        match = None
        for o in live:
            if o.slot == t.slot:
                match = o
                break
        if match is None:
            places += 1
        elif not fits(match, t, now):
            cancels += 1
    return cancels, places


def timeit(fn: Callable[[], object]) -> list[float]:
    for _ in range(200):  # warm up
        fn()
    samples = []
    for _ in range(REPEAT):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000.0)
    return samples


def main() -> None:
    live = live_orders()
    print(
        f"order manager decision: {len(targets(0, 0))} targets vs {len(live)} live orders, {REPEAT} runs each"
    )
    print(f"{'case':<16}{'planner p50 us':>16}{'p99 us':>10}{'baseline p50 us':>18}{'ratio':>8}")
    worst = 0.0
    for name, wanted in (
        ("unchanged", targets(0, 0)),
        ("half moved", targets(20, LEVELS // 2)),
        ("all moved", targets(20, LEVELS)),
    ):
        ours = timeit(lambda wanted=wanted: plan(wanted, live, 10.0))  # type: ignore[misc]
        base = timeit(lambda wanted=wanted: naive(wanted, live, 10.0))  # type: ignore[misc]
        p50, p99 = statistics.median(ours), sorted(ours)[int(len(ours) * 0.99)]
        b50 = statistics.median(base)
        worst = max(worst, p50)
        print(f"{name:<16}{p50:>16.1f}{p99:>10.1f}{b50:>18.1f}{p50 / b50:>8.2f}")
    verdict = "OK" if worst < 200 else "OVER TARGET"
    print(f"worst median {worst:.1f} us (target < 200 us): {verdict}")


if __name__ == "__main__":
    main()
