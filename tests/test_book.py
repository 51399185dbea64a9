"""The local L2 book: hand-computed values, and a brute-force dict model under random updates."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.book import L2Book
from strategies.book_side import BookSide, PyBookSide
from strategies.types import Side

# ---------------------------------------------------------------- hand-computed values


def _book() -> L2Book:
    book = L2Book("alpha", "BERA/USDT")
    book.apply_snapshot(
        bids=[["2.00", "10"], ["1.99", "20"], ["1.98", "30"]],
        asks=[["2.02", "5"], ["2.03", "15"], ["2.05", "40"]],
        seq=100,
        ts=1.0,
    )
    return book


def test_top_of_book_mid_spread_and_microprice_match_hand_calculation() -> None:
    book = _book()
    assert book.best_bid() == 2.00
    assert book.best_ask() == 2.02
    assert book.best_bid_size() == 10.0
    assert book.best_ask_size() == 5.0
    assert book.mid() == pytest.approx(2.01)
    assert book.spread_bps() == pytest.approx(0.02 / 2.01 * 1e4)
    # (bid * ask_size + ask * bid_size) / (bid_size + ask_size) = (2*5 + 2.02*10) / 15
    assert book.microprice() == pytest.approx((2.00 * 5 + 2.02 * 10) / 15)
    # less size on the ask: the microprice leans toward the ask
    microprice = book.microprice()
    mid = book.mid()
    assert microprice is not None and mid is not None and microprice > mid


def test_snapshot_accepts_orjson_parsed_wire_levels_and_skips_zero_quantities() -> None:
    raw = b'{"lastUpdateId": 7, "bids": [["1.5", "2.0"], ["1.4", "0.00"]], "asks": [["1.6", "3"]]}'
    frame = orjson.loads(raw)
    book = L2Book("alpha", "BERA/USDT")
    book.apply_snapshot(frame["bids"], frame["asks"], frame["lastUpdateId"], ts=5.0)
    assert book.top(10) == ([(1.5, 2.0)], [(1.6, 3.0)])
    assert (book.seq, book.ts, book.version) == (7, 5.0, 1)


def test_delta_updates_inserts_and_removes_levels_and_bumps_version() -> None:
    book = _book()
    version = book.version
    book.apply_delta(
        bids=[["2.00", "0"], ["2.01", "1.5"], ["1.99", "25"]],
        asks=[["2.02", "0"], ["2.04", "7"]],
        seq=101,
        ts=2.0,
    )
    assert book.top(3) == (
        [(2.01, 1.5), (1.99, 25.0), (1.98, 30.0)],
        [(2.03, 15.0), (2.04, 7.0), (2.05, 40.0)],
    )
    assert book.version == version + 1
    assert (book.seq, book.ts) == (101, 2.0)
    # deleting a level that is not there is harmless (Binance sends such deletes)
    book.apply_delta([["1.50", "0"]], [], seq=102, ts=3.0)
    assert book.bid_count() == 3


def test_levels_can_carry_extra_fields_and_floats() -> None:
    book = L2Book("alpha", "BERA/USDT")
    book.apply_delta([[2.0, 1.0, 4]], [(2.1, 3.0)], seq=1, ts=1.0)
    assert book.top(1) == ([(2.0, 1.0)], [(2.1, 3.0)])


def test_depth_within_bps_counts_levels_inside_the_band_on_each_side() -> None:
    book = _book()
    # 50 bps around 2.01: bids >= 1.99995 (2.00), asks <= 2.02005 (2.02)
    assert book.depth_within_bps(50, Side.BUY) == 10.0
    assert book.depth_within_bps(50, Side.SELL) == 5.0
    # 100 bps: bids >= 1.9899 (2.00, 1.99), asks <= 2.0301 (2.02, 2.03)
    assert book.depth_within_bps(100, Side.BUY) == 30.0
    assert book.depth_within_bps(100, Side.SELL) == 20.0
    assert book.depth_within_bps(100) == 50.0
    assert book.depth_within_bps(1000) == 120.0
    assert book.depth_within_bps(1) == 0.0


def test_depth_to_price_counts_what_rests_at_or_better_than_a_price() -> None:
    book = _book()
    assert book.depth_to_price(Side.BUY, 1.99) == 30.0
    assert book.depth_to_price(Side.SELL, 2.03) == 20.0
    assert book.depth_to_price(Side.SELL, 2.01) == 0.0
    assert list(book.levels(Side.SELL)) == [(2.02, 5.0), (2.03, 15.0), (2.05, 40.0)]


def test_fill_price_walks_the_opposite_side() -> None:
    book = _book()
    # buy 10: 5 @ 2.02 + 5 @ 2.03
    assert book.fill_price(Side.BUY, 10) == pytest.approx((5 * 2.02 + 5 * 2.03) / 10)
    # sell 35: 10 @ 2.00 + 20 @ 1.99 + 5 @ 1.98
    assert book.fill_price(Side.SELL, 35) == pytest.approx((10 * 2.00 + 20 * 1.99 + 5 * 1.98) / 35)
    assert book.fill_price(Side.BUY, 60) == pytest.approx((5 * 2.02 + 15 * 2.03 + 40 * 2.05) / 60)
    assert book.fill_price(Side.BUY, 60.0001) is None
    assert book.fill_price(Side.SELL, 0) == 2.00


def test_empty_and_one_sided_books_answer_none_not_garbage() -> None:
    book = L2Book("alpha", "BERA/USDT")
    assert book.mid() is None and book.microprice() is None and book.spread_bps() is None
    assert book.best_bid_size() == 0.0
    assert book.depth_within_bps(50) == 0.0
    assert book.fill_price(Side.BUY, 1) is None
    book.apply_delta([["1", "1"]], [], seq=1, ts=1.0)
    assert book.best_bid() == 1.0 and book.mid() is None and book.fill_price(Side.BUY, 1) is None


def test_max_depth_trims_far_levels_and_keeps_the_best() -> None:
    book = L2Book("alpha", "BERA/USDT", max_depth=2)
    book.apply_snapshot([["3", "1"], ["2", "1"], ["1", "1"]], [["4", "1"], ["5", "1"], ["6", "1"]], 1, 1.0)
    assert book.top(10) == ([(3.0, 1.0), (2.0, 1.0)], [(4.0, 1.0), (5.0, 1.0)])
    book.apply_delta([["3.5", "1"]], [["3.9", "2"]], 2, 2.0)
    assert book.top(10) == ([(3.5, 1.0), (3.0, 1.0)], [(3.9, 2.0), (4.0, 1.0)])
    # a trimmed level is really gone, not just hidden
    assert book.bid_qty(2.0) == 0.0 and book.ask_qty(5.0) == 0.0


def test_clear_empties_the_book_and_resets_seq() -> None:
    book = _book()
    version = book.version
    book.clear()
    assert book.top(5) == ([], [])
    assert book.seq == 0 and book.version == version + 1


def test_crossed_book_is_reported() -> None:
    book = _book()
    assert not book.is_crossed()
    book.apply_delta([["2.03", "1"]], [], 101, 2.0)
    assert book.is_crossed()
    spread = book.spread_bps()
    assert spread is not None and spread < 0


# ---------------------------------------------------------------- brute-force model


class _Model:
    """The obvious book: two dicts, sorted on every question."""

    def __init__(self, max_depth: int | None) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.max_depth = max_depth

    def apply(self, bids: list[list[str]], asks: list[list[str]], snapshot: bool) -> None:
        if snapshot:
            self.bids, self.asks = {}, {}
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q in levels:
                if float(q) > 0:
                    side[float(p)] = float(q)
                else:
                    side.pop(float(p), None)
        if self.max_depth is not None:
            self.bids = dict(self.sorted_bids()[: self.max_depth])
            self.asks = dict(self.sorted_asks()[: self.max_depth])

    def sorted_bids(self) -> list[tuple[float, float]]:
        return sorted(self.bids.items(), reverse=True)

    def sorted_asks(self) -> list[tuple[float, float]]:
        return sorted(self.asks.items())

    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (max(self.bids) + min(self.asks)) / 2

    def depth(self, bps: float) -> tuple[float, float]:
        mid = self.mid()
        if mid is None:
            return 0.0, 0.0
        lo, hi = mid * (1 - bps * 1e-4), mid * (1 + bps * 1e-4)
        return (
            sum(q for p, q in self.bids.items() if p >= lo),
            sum(q for p, q in self.asks.items() if p <= hi),
        )

    def fill(self, taker: Side, size: float) -> float | None:
        levels = self.sorted_asks() if taker is Side.BUY else self.sorted_bids()
        if math.fsum(q for _, q in levels) < size * (1 - 1e-12):
            return None
        cost, left = 0.0, size
        for p, q in levels:
            take = min(q, left)
            cost += p * take
            left -= take
        return cost / size


def _as_numbers(levels: list[list[str]]) -> list[list[float]]:
    return [[orjson.loads(p), orjson.loads(q)] for p, q in levels]


_prices = st.integers(min_value=90, max_value=110).map(lambda i: f"{i / 100:.2f}")
_qtys = st.one_of(st.just("0"), st.integers(min_value=1, max_value=500).map(lambda i: f"{i / 10:.1f}"))
_levels = st.lists(st.tuples(_prices, _qtys).map(list), max_size=12)
_op = st.tuples(st.booleans(), _levels, _levels)


@settings(max_examples=100, deadline=None)
@given(
    ops=st.lists(_op, min_size=1, max_size=25),
    max_depth=st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
    bps=st.floats(min_value=0.0, max_value=2000.0),
    size=st.floats(min_value=0.01, max_value=200.0),
    numeric=st.booleans(),
    side_class=st.sampled_from([BookSide, PyBookSide]),
)
def test_book_matches_a_brute_force_model_under_random_snapshots_and_deltas(
    ops: list[tuple[bool, list[list[str]], list[list[str]]]],
    max_depth: int | None,
    bps: float,
    size: float,
    numeric: bool,
    side_class: type[PyBookSide],
) -> None:
    # both sides: the compiled one the build installs and the Python fallback
    book = L2Book("alpha", "X/Y", max_depth=max_depth, side_type=side_class)
    model = _Model(max_depth)
    for seq, (snapshot, bids, asks) in enumerate(ops, start=1):
        if snapshot:
            book.apply_snapshot(bids, asks, seq, float(seq))
        elif numeric:
            # levels as orjson parses unquoted numbers ("0" is the int 0)
            book.apply_delta(_as_numbers(bids), _as_numbers(asks), seq, float(seq))
        else:
            book.apply_delta(bids, asks, seq, float(seq))
        model.apply(bids, asks, snapshot)
        assert book.version == seq

    assert list(book.bid_levels()) == model.sorted_bids()
    assert list(book.ask_levels()) == model.sorted_asks()
    assert all(type(p) is float for p, _ in [*book.bid_levels(), *book.ask_levels()])
    assert book.top(3) == (model.sorted_bids()[:3], model.sorted_asks()[:3])
    assert book.mid() == model.mid()
    bid_depth, ask_depth = model.depth(bps)
    assert book.depth_within_bps(bps, Side.BUY) == pytest.approx(bid_depth)
    assert book.depth_within_bps(bps, Side.SELL) == pytest.approx(ask_depth)
    for taker in Side:
        expected = model.fill(taker, size)
        got = book.fill_price(taker, size)
        if expected is None:
            assert got is None
        else:
            assert got is not None and math.isclose(got, expected, rel_tol=1e-9)


def test_delta_takes_numbers_keeps_float_keys_ignores_extra_fields_and_rejects_non_pairs() -> None:
    book = L2Book("alpha", "BERA/USDT")
    book.apply_snapshot([["2.0", "1"]], [["2.1", "1"]], seq=1, ts=1.0)
    book.apply_delta([[2, 5], [1.99, 3.5]], [[2.1, 0]], seq=2, ts=2.0)  # ints, as orjson parses "2" and "0"
    assert list(book.bid_levels()) == [(2.0, 5.0), (1.99, 3.5)]
    assert type(book.best_bid()) is float and book.ask_count() == 0
    book.apply_delta([[3, 1]], [], seq=3, ts=3.0)  # a new level's price is stored as a float key
    assert type(book.best_bid()) is float and book.best_bid() == 3.0
    book.apply_delta([["2.5", "1", 4]], [], seq=4, ts=4.0)  # a third field (order count) is ignored
    assert book.bid_qty(2.5) == 1.0
    for bad in ([["2.6"]], ["26"], [["x", "1"]], [[None, "1"]]):
        with pytest.raises((ValueError, TypeError, IndexError)):
            book.apply_delta(bad, [], seq=5, ts=5.0)  # type: ignore[arg-type]
    assert book.seq == 4  # not applied: the feed's next event reports a gap and resyncs
