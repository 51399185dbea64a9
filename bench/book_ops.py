"""Book hot-path throughput: L2Book.apply_delta against plain-dict baselines, in one run.

Deltas look like Binance diff-depth frames after orjson: lists of [price_str, qty_str], a
handful of levels per frame clustered near the top, about one in five a deletion, over a
book of ~1000 levels per side. Figures are level updates per second (higher is better).

Baselines:
* ``dict only``: float() the strings and set/pop a dict — the floor any book pays, with no
  order kept at all (it cannot answer best bid without sorting);
* ``dict + sort on read``: the same, then sorting to read the top of book after each frame,
  as a book that keeps no sorted index must.

``L2Book`` runs on the compiled side (``strategies/_book_side.c``) when it is built, and the
same book on the pure-Python side (``PyBookSide``) is measured too.

Also: the cost of reading top-of-book from L2Book after each frame, and of the aggregator's
combined book over three venues (depth 50) after one venue changed.

Run: ``.venv/bin/python bench/book_ops.py``
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from strategies.aggregator import Aggregator, CombinedBookSpec
from strategies.book import ACCELERATED, L2Book
from strategies.book_side import BookSide, PyBookSide
from strategies.types import BookHealth, SyncState

Frame = tuple[list[list[str]], list[list[str]]]
TICK = 0.0001
MID_TICKS = 20_000  # price 2.0000


def _price(ticks: int) -> str:
    return f"{ticks * TICK:.4f}"


def make_frames(count: int, seed: int = 1) -> tuple[Frame, list[Frame]]:
    rng = random.Random(seed)
    snapshot: Frame = (
        [[_price(MID_TICKS - 1 - i), f"{rng.uniform(1, 500):.2f}"] for i in range(1000)],
        [[_price(MID_TICKS + 1 + i), f"{rng.uniform(1, 500):.2f}"] for i in range(1000)],
    )
    frames: list[Frame] = []
    for _ in range(count):
        bids: list[list[str]] = []
        asks: list[list[str]] = []
        for _ in range(rng.randint(2, 10)):
            offset = int(rng.expovariate(1 / 15))  # most changes near the top
            qty = "0.00" if rng.random() < 0.2 else f"{rng.uniform(1, 500):.2f}"
            if rng.random() < 0.5:
                bids.append([_price(MID_TICKS - 1 - offset), qty])
            else:
                asks.append([_price(MID_TICKS + 1 + offset), qty])
        frames.append((bids, asks))
    return snapshot, frames


def level_count(frames: list[Frame]) -> int:
    return sum(len(b) + len(a) for b, a in frames)


def timed(fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_l2book(
    snapshot: Frame, frames: list[Frame], read_top: bool, side_type: type[PyBookSide] = BookSide
) -> None:
    book = L2Book("alpha", "BERA/USDT", side_type=side_type)
    book.apply_snapshot(snapshot[0], snapshot[1], 1, 0.0)
    for seq, (bids, asks) in enumerate(frames, start=2):
        book.apply_delta(bids, asks, seq, 0.0)
        if read_top:
            book.best_bid()
            book.best_ask()
            book.microprice()


def run_dict_only(snapshot: Frame, frames: list[Frame]) -> None:
    bids = {float(p): float(q) for p, q in snapshot[0]}
    asks = {float(p): float(q) for p, q in snapshot[1]}
    for frame_bids, frame_asks in frames:
        for side, levels in ((bids, frame_bids), (asks, frame_asks)):
            for lv in levels:
                price = float(lv[0])
                qty = float(lv[1])
                if qty > 0.0:
                    side[price] = qty
                else:
                    side.pop(price, None)


def run_dict_sort_on_read(snapshot: Frame, frames: list[Frame]) -> None:
    bids = {float(p): float(q) for p, q in snapshot[0]}
    asks = {float(p): float(q) for p, q in snapshot[1]}
    for frame_bids, frame_asks in frames:
        for side, levels in ((bids, frame_bids), (asks, frame_asks)):
            for lv in levels:
                price = float(lv[0])
                qty = float(lv[1])
                if qty > 0.0:
                    side[price] = qty
                else:
                    side.pop(price, None)
        sorted(bids, reverse=True)[:5]
        sorted(asks)[:5]


def bench_aggregator(snapshot: Frame, frames: list[Frame], rounds: int) -> float:
    spec = CombinedBookSpec("BERA/USDT", venues=["alpha", "beta", "gamma"])
    agg = Aggregator([spec])
    books = []
    for venue in spec.venues:
        book = L2Book(venue, "BERA/USDT")
        book.apply_snapshot(snapshot[0], snapshot[1], 1, 0.0)
        book.health = BookHealth(state=SyncState.IN_SYNC, last_update_ts=1.0)
        agg.update(book)
        books.append(book)
    start = time.perf_counter()
    for i in range(rounds):
        bids, asks = frames[i % len(frames)]
        books[i % 3].apply_delta(bids, asks, i + 2, 0.0)
        agg.combined("BERA/USDT", depth=50)
    return (time.perf_counter() - start) / rounds


def main() -> None:
    snapshot, frames = make_frames(40_000)
    levels = level_count(frames)
    print(f"{len(frames)} frames, {levels} level updates, book of 1000 levels a side")

    t_book = timed(lambda: run_l2book(snapshot, frames, read_top=False))
    t_book_read = timed(lambda: run_l2book(snapshot, frames, read_top=True))
    t_dict = timed(lambda: run_dict_only(snapshot, frames))
    t_sort = timed(lambda: run_dict_sort_on_read(snapshot, frames))
    t_py = timed(lambda: run_l2book(snapshot, frames, read_top=False, side_type=PyBookSide))

    rows = [
        ("L2Book.apply_delta", t_book),
        ("L2Book.apply_delta + top read", t_book_read),
        ("baseline: dict only (no order)", t_dict),
        ("baseline: dict + sort on read", t_sort),
        ("L2Book.apply_delta, Python side", t_py),
    ]
    print(f"book side: {'compiled' if ACCELERATED else 'pure Python (extension not built)'}")
    for name, seconds in rows:
        print(f"{name:34s} {levels / seconds:>12,.0f} levels/s  {len(frames) / seconds:>10,.0f} frames/s")
    print(f"L2Book vs dict-only baseline:          {t_dict / t_book:.2f}x the throughput")
    print(f"L2Book+read vs dict+sort-on-read:      {t_sort / t_book_read:.1f}x the throughput")
    print(f"compiled side vs Python side:          {t_py / t_book:.2f}x the throughput")

    per_combine = bench_aggregator(snapshot, frames, rounds=2_000)
    print(f"aggregator: delta + combined(depth=50) over 3 venues: {per_combine * 1e6:,.0f} µs per call")


if __name__ == "__main__":
    main()
