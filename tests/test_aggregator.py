"""The aggregator: combined levels with venue shares, synthetic cross books, exclusions."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.aggregator import (
    Aggregator,
    CombinedBookSpec,
    CrossSpec,
    combine,
    convert_cross,
)
from strategies.book import L2Book
from strategies.types import BookHealth, Side, SyncState

Levels = list[tuple[float, float]]


def _book(venue: str, symbol: str, bids: Levels, asks: Levels, ts: float = 100.0) -> L2Book:
    book = L2Book(venue, symbol)
    book.apply_snapshot(bids, asks, seq=1, ts=ts)
    book.health = BookHealth(state=SyncState.IN_SYNC, last_update_ts=ts)
    return book


def _spec(**kwargs: object) -> CombinedBookSpec:
    defaults: dict[str, object] = {"symbol": "BERA/USDT", "venues": ["alpha", "beta"]}
    defaults.update(kwargs)
    return CombinedBookSpec(**defaults)  # type: ignore[arg-type]


# ---------------------------------------------------------------- hand-computed values


def test_levels_at_the_same_price_merge_with_each_venues_share() -> None:
    agg = Aggregator([_spec()])
    assert agg.update(_book("alpha", "BERA/USDT", [(2.00, 30), (1.99, 10)], [(2.02, 10)])) == ("BERA/USDT",)
    agg.update(_book("beta", "BERA/USDT", [(2.00, 10), (1.98, 5)], [(2.01, 4), (2.02, 30)]))
    book = agg.combined("BERA/USDT")
    assert [(lv.price, lv.qty) for lv in book.bids] == [(2.00, 40), (1.99, 10), (1.98, 5)]
    assert book.bids[0].shares == {"alpha": 0.75, "beta": 0.25}
    assert book.bids[1].shares == {"alpha": 1.0}
    assert [(lv.price, lv.qty) for lv in book.asks] == [(2.01, 4), (2.02, 40)]
    assert book.asks[1].shares == {"alpha": 0.25, "beta": 0.75}
    assert book.asks[1].venue_qty("beta") == pytest.approx(30)
    assert book.shares_at_top() == ({"alpha": 0.75, "beta": 0.25}, {"beta": 1.0})
    assert book.mid() == pytest.approx(2.005)
    assert book.venues == ["alpha", "beta"] and book.excluded == []
    # buy 20 across venues: 4 @ 2.01 + 16 @ 2.02
    assert book.fill_price(Side.BUY, 20) == pytest.approx((4 * 2.01 + 16 * 2.02) / 20)


def test_cross_book_converts_bids_at_the_via_bid_and_asks_at_the_via_ask() -> None:
    spec = _spec(
        venues=["alpha"],
        cross=[CrossSpec(source_symbol="BERA/BTC", via_symbol="BTC/USDT", venues=["gamma"])],
    )
    agg = Aggregator([spec])
    agg.update(_book("alpha", "BERA/USDT", [(2.00, 10)], [(2.03, 10)]))
    assert agg.update(_book("gamma", "BERA/BTC", [(0.00002, 100), (0.000019, 50)], [(0.000021, 80)])) == (
        "BERA/USDT",
    )
    assert agg.update(_book("gamma", "BTC/USDT", [(99_000.0, 1), (98_000.0, 2)], [(101_000.0, 1)])) == (
        "BERA/USDT",
    )
    book = agg.combined("BERA/USDT")
    # by hand: bids 0.00002 * 99000 = 1.98, 0.000019 * 99000 = 1.881; ask 0.000021 * 101000 = 2.121
    assert [(round(lv.price, 9), lv.qty) for lv in book.bids] == [(2.00, 10), (1.98, 100), (1.881, 50)]
    assert [(round(lv.price, 9), lv.qty) for lv in book.asks] == [(2.03, 10), (2.121, 80)]
    assert book.bids[1].shares == {"gamma:BERA/BTC": 1.0}
    assert set(book.venues) == {"alpha", "gamma:BERA/BTC"}


def test_cross_book_follows_changes_in_either_leg() -> None:
    spec = _spec(venues=[], cross=[CrossSpec("BERA/BTC", "BTC/USDT", venues=["gamma"])])
    agg = Aggregator([spec])
    source = _book("gamma", "BERA/BTC", [(0.00002, 100)], [(0.000021, 80)])
    via = _book("gamma", "BTC/USDT", [(100_000.0, 1)], [(100_100.0, 1)])
    agg.update(source)
    agg.update(via)
    assert agg.combined("BERA/USDT").best_bid() == pytest.approx(2.0)
    via.apply_delta([(100_000.0, 0), (90_000.0, 1)], [], seq=2, ts=101.0)
    assert agg.update(via) == ("BERA/USDT",)
    assert agg.combined("BERA/USDT").best_bid() == pytest.approx(1.8)


def test_cross_book_uses_a_named_via_venue() -> None:
    spec = _spec(venues=[], cross=[CrossSpec("BERA/BTC", "BTC/USDT", venues=["gamma"], via_venue="alpha")])
    agg = Aggregator([spec])
    agg.update(_book("gamma", "BERA/BTC", [(0.00002, 100)], [(0.000021, 80)]))
    agg.update(_book("gamma", "BTC/USDT", [(1.0, 1)], [(2.0, 1)]))  # not the route: ignored
    assert agg.update(_book("alpha", "BTC/USDT", [(50_000.0, 1)], [(50_010.0, 1)])) == ("BERA/USDT",)
    assert agg.combined("BERA/USDT").best_bid() == pytest.approx(1.0)


def test_cross_route_that_does_not_lead_to_the_symbol_is_rejected() -> None:
    with pytest.raises(ValueError, match="does not lead to BERA/USDT"):
        _spec(cross=[CrossSpec("BERA/ETH", "BTC/USDT", venues=["alpha"])])


def test_books_out_of_sync_stale_or_missing_are_excluded_with_the_reason() -> None:
    agg = Aggregator([_spec(venues=["alpha", "beta", "gamma", "delta"], max_age_s=5.0)])
    agg.update(_book("alpha", "BERA/USDT", [(2.00, 1)], [(2.02, 1)], ts=100.0))
    resyncing = _book("beta", "BERA/USDT", [(2.01, 1)], [(2.015, 1)], ts=100.0)
    resyncing.health = BookHealth(state=SyncState.RESYNCING, reason="sequence gap 10 -> 12")
    agg.update(resyncing)
    agg.update(_book("gamma", "BERA/USDT", [(1.50, 1)], [(2.50, 1)], ts=90.0))
    book = agg.combined("BERA/USDT", now=101.0)
    assert book.venues == ["alpha"]
    excluded = dict(book.excluded)
    assert excluded["beta"] == "resyncing: sequence gap 10 -> 12"
    assert excluded["gamma"].startswith("stale: last update 11.0s ago")
    assert excluded["delta"] == "no book"
    assert book.best_bid() == 2.00


def test_out_of_sync_via_leg_excludes_the_cross_book() -> None:
    spec = _spec(venues=["alpha"], cross=[CrossSpec("BERA/BTC", "BTC/USDT", venues=["alpha"])])
    agg = Aggregator([spec])
    agg.update(_book("alpha", "BERA/USDT", [(2.00, 1)], [(2.02, 1)]))
    agg.update(_book("alpha", "BERA/BTC", [(0.00002, 100)], [(0.000021, 80)]))
    via = _book("alpha", "BTC/USDT", [(100_000.0, 1)], [(100_100.0, 1)])
    via.health = BookHealth(state=SyncState.DISCONNECTED, reason="socket closed")
    agg.update(via)
    book = agg.combined("BERA/USDT")
    assert book.venues == ["alpha"]
    assert book.excluded == [("alpha:BERA/BTC", "disconnected: BTC/USDT@alpha socket closed")]


def test_venue_subset_selects_direct_books_and_their_cross_books() -> None:
    spec = _spec(venues=["alpha", "beta"], cross=[CrossSpec("BERA/BTC", "BTC/USDT", venues=["alpha"])])
    agg = Aggregator([spec])
    agg.update(_book("alpha", "BERA/USDT", [(2.00, 1)], [(2.02, 1)]))
    agg.update(_book("beta", "BERA/USDT", [(2.01, 1)], [(2.03, 1)]))
    agg.update(_book("alpha", "BERA/BTC", [(0.00002, 100)], [(0.000021, 80)]))
    agg.update(_book("alpha", "BTC/USDT", [(100_000.0, 1)], [(100_100.0, 1)]))
    assert agg.combined("BERA/USDT", venues=["alpha"]).venues == ["alpha", "alpha:BERA/BTC"]
    assert agg.combined("BERA/USDT", venues=["beta"]).venues == ["beta"]
    assert agg.combined("BERA/USDT", venues=["alpha:BERA/BTC"]).venues == ["alpha:BERA/BTC"]
    unknown = agg.combined("BERA/USDT", venues=["beta", "omega"])
    assert unknown.venues == ["beta"]
    assert unknown.excluded == [("omega", "not configured for BERA/USDT")]


def test_combined_book_is_cached_until_an_input_book_changes() -> None:
    agg = Aggregator([_spec()])
    alpha = _book("alpha", "BERA/USDT", [(2.00, 1)], [(2.02, 1)])
    agg.update(alpha)
    first = agg.combined("BERA/USDT")
    assert agg.combined("BERA/USDT") is first
    alpha.apply_delta([(2.01, 3)], [], seq=2, ts=101.0)
    assert agg.update(alpha) == ("BERA/USDT",)
    second = agg.combined("BERA/USDT")
    assert second is not first and second.best_bid() == 2.01


def test_update_of_an_unconfigured_book_touches_nothing() -> None:
    agg = Aggregator([_spec()])
    assert agg.update(_book("alpha", "ETH/USDT", [(1.0, 1)], [(1.1, 1)])) == ()
    assert agg.book("alpha", "ETH/USDT") is not None


def test_price_bucket_merges_near_equal_prices_rounding_bids_down_and_asks_up() -> None:
    agg = Aggregator([_spec(price_bucket=0.01)])
    agg.update(_book("alpha", "BERA/USDT", [(2.0049, 1), (1.9999999999999998, 2)], [(2.0101, 1)]))
    agg.update(_book("beta", "BERA/USDT", [(2.0, 3)], [(2.0200000000000005, 1), (2.02, 4)]))
    book = agg.combined("BERA/USDT")
    assert [(lv.price, lv.qty) for lv in book.bids] == [(2.0, 6.0)]
    assert book.bids[0].shares == {"alpha": 0.5, "beta": 0.5}
    assert [(lv.price, lv.qty) for lv in book.asks] == [(2.02, 6.0)]


def test_depth_limits_levels_per_side() -> None:
    agg = Aggregator([_spec()])
    agg.update(_book("alpha", "BERA/USDT", [(2.0 - i / 100, 1) for i in range(10)], [(2.1, 1)]))
    assert len(agg.combined("BERA/USDT", depth=4).bids) == 4
    assert len(agg.combined("BERA/USDT", depth=None).bids) == 10


# ---------------------------------------------------------------- properties

_venue_names = ["alpha", "beta", "gamma", "delta"]
_side_levels = st.dictionaries(
    st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=1000), max_size=15
)
_venue_books = st.dictionaries(
    st.sampled_from(_venue_names), st.tuples(_side_levels, _side_levels), min_size=1, max_size=4
)


def _to_levels(ticks: dict[int, int], scale: float, offset: float) -> Levels:
    return [(offset + t * scale, q / 10) for t, q in ticks.items()]


def _books_from(drawn: dict[str, tuple[dict[int, int], dict[int, int]]]) -> dict[str, L2Book]:
    # bids below 1.0, asks above: books are not crossed (the aggregator does not care either way)
    return {
        venue: _book(venue, "X/USDT", _to_levels(bids, -0.01, 1.0), _to_levels(asks, 0.01, 1.0))
        for venue, (bids, asks) in drawn.items()
    }


@settings(max_examples=120, deadline=None)
@given(drawn=_venue_books, bucket=st.sampled_from([None, 0.01, 0.03, 0.1]))
def test_combined_levels_are_the_sum_of_their_venues_and_shares_sum_to_one(
    drawn: dict[str, tuple[dict[int, int], dict[int, int]]], bucket: float | None
) -> None:
    books = _books_from(drawn)
    combined = combine("X/USDT", books, depth=None, price_bucket=bucket)
    for side, levels in ((Side.BUY, combined.bids), (Side.SELL, combined.asks)):
        # brute force: every venue level into its bucket (floor for bids, ceil for asks)
        expected: dict[float, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for venue, book in books.items():
            for price, qty in book.levels(side):
                if bucket is None:
                    key = price
                else:
                    units = price / bucket
                    rounded = math.floor(units + 1e-9) if side is Side.BUY else math.ceil(units - 1e-9)
                    key = round(rounded * bucket, 12)
                expected[key][venue] += qty
        assert [lv.price for lv in levels] == sorted(expected, reverse=side is Side.BUY)
        for lv in levels:
            assert lv.qty == pytest.approx(sum(expected[lv.price].values()), rel=1e-12)
            assert set(lv.shares) == set(expected[lv.price])
            assert math.fsum(lv.shares.values()) == pytest.approx(1.0, abs=1e-9)
            for venue, share in lv.shares.items():
                assert share * lv.qty == pytest.approx(expected[lv.price][venue], rel=1e-9)


@settings(max_examples=120, deadline=None)
@given(drawn=_venue_books, depth=st.integers(min_value=1, max_value=8))
def test_depth_limited_combined_book_is_the_top_of_the_full_one(
    drawn: dict[str, tuple[dict[int, int], dict[int, int]]], depth: int
) -> None:
    books = _books_from(drawn)
    for bucket in (None, 0.05):
        full = combine("X/USDT", books, depth=None, price_bucket=bucket)
        top = combine("X/USDT", books, depth=depth, price_bucket=bucket)
        assert [(lv.price, lv.qty) for lv in top.bids] == [(lv.price, lv.qty) for lv in full.bids[:depth]]
        assert [(lv.price, lv.qty) for lv in top.asks] == [(lv.price, lv.qty) for lv in full.asks[:depth]]


@settings(max_examples=120, deadline=None)
@given(drawn=_venue_books, size=st.floats(min_value=0.01, max_value=500.0))
def test_combined_fill_price_matches_a_brute_force_walk_over_all_venues(
    drawn: dict[str, tuple[dict[int, int], dict[int, int]]], size: float
) -> None:
    books = _books_from(drawn)
    combined = combine("X/USDT", books, depth=None)
    for taker in Side:
        book_side = Side.SELL if taker is Side.BUY else Side.BUY
        every = sorted(
            (lv for b in books.values() for lv in b.levels(book_side)), reverse=book_side is Side.BUY
        )
        if math.fsum(q for _, q in every) < size * (1 - 1e-12):
            assert combined.fill_price(taker, size) is None
            continue
        cost, left = 0.0, size
        for price, qty in every:
            take = min(qty, left)
            cost += price * take
            left -= take
        got = combined.fill_price(taker, size)
        assert got is not None and math.isclose(got, cost / size, rel_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    source=st.tuples(_side_levels, _side_levels),
    via_bid=st.floats(min_value=1.0, max_value=1e5),
    via_spread=st.floats(min_value=0.0, max_value=0.05),
)
def test_cross_conversion_multiplies_each_level_by_the_conservative_via_price(
    source: tuple[dict[int, int], dict[int, int]], via_bid: float, via_spread: float
) -> None:
    bids, asks = source
    src = _book("alpha", "X/BTC", _to_levels(bids, -1e-6, 1e-4), _to_levels(asks, 1e-6, 1e-4))
    via_ask = via_bid * (1 + via_spread)
    via = _book("alpha", "BTC/USDT", [(via_bid, 1.0), (via_bid * 0.9, 5.0)], [(via_ask, 1.0)])
    out = convert_cross(src, via, "alpha:X/BTC", "X/USDT")
    assert list(out.bid_levels()) == [(p * via_bid, q) for p, q in src.bid_levels()]
    assert list(out.ask_levels()) == [(p * via_ask, q) for p, q in src.ask_levels()]
    assert out.health.usable
