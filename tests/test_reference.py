"""Reference price sources: aggregated, component, liquidity-weighted, single; exclusions say why."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.aggregator import Aggregator, CombinedBookSpec, CrossSpec
from strategies.book import L2Book
from strategies.reference import PriceField, ReferenceKind, ReferencePrice, ReferenceSpec, reference_price
from strategies.types import BookHealth, SyncState

NOW = 1_000.0
SYMBOL = "BERA/USDT"


def _book(
    venue: str,
    bids: list[tuple[float, float]],
    asks: list[tuple[float, float]],
    ts: float = NOW,
    symbol: str = SYMBOL,
) -> L2Book:
    book = L2Book(venue, symbol)
    book.apply_snapshot(bids, asks, seq=1, ts=ts)
    book.health = BookHealth(state=SyncState.IN_SYNC, last_update_ts=ts)
    return book


def _books() -> dict[tuple[str, str], L2Book]:
    # mids: alpha 2.00, beta 2.02, gamma 2.06; the best ask (alpha) is below the best bid (beta)
    return {
        ("alpha", SYMBOL): _book("alpha", [(1.99, 10), (1.90, 100)], [(2.01, 20)]),
        ("beta", SYMBOL): _book("beta", [(2.015, 6)], [(2.025, 4), (2.50, 100)]),
        ("gamma", SYMBOL): _book("gamma", [(1.96, 5)], [(2.16, 5)]),
        ("alpha", "ETH/USDT"): _book("alpha", [(3000.0, 1)], [(3001.0, 1)], symbol="ETH/USDT"),
    }


def _price(kind: ReferenceKind, venues: list[str] | None = None, **kwargs: object) -> ReferencePrice:
    spec = ReferenceSpec(kind, venues, **kwargs)  # type: ignore[arg-type]
    return reference_price(spec, _books(), SYMBOL, NOW)


def test_aggregated_reference_is_the_mid_of_the_best_bid_and_ask_anywhere() -> None:
    ref = _price(ReferenceKind.AGGREGATED)
    # best bid 2.015 (beta), best ask 2.01 (alpha): crossed across venues, still a price
    assert ref.value == pytest.approx((2.015 + 2.01) / 2)
    assert sorted(ref.venues_used) == ["alpha", "beta", "gamma"]
    assert ref.reason == "crossed across venues"


def test_aggregated_microprice_sums_sizes_at_the_best_prices() -> None:
    books = _books()
    books[("gamma", SYMBOL)] = _book("gamma", [(2.015, 2)], [(2.03, 5)])
    spec = ReferenceSpec(ReferenceKind.COMPONENT, ["beta", "gamma"], price="microprice")
    ref = reference_price(spec, books, SYMBOL, NOW)
    # best bid 2.015 with 6 + 2 = 8; best ask 2.025 with 4
    assert ref.value == pytest.approx((2.015 * 4 + 2.025 * 8) / 12)


def test_component_reference_uses_only_the_named_venues() -> None:
    ref = _price(ReferenceKind.COMPONENT, ["alpha", "gamma"])
    assert ref.value == pytest.approx((1.99 + 2.01) / 2)
    assert ref.venues_used == ["alpha", "gamma"]


def test_liquidity_weighted_reference_weights_mids_by_depth_within_bps() -> None:
    ref = _price(ReferenceKind.LIQUIDITY_WEIGHTED, depth_bps=60)
    # alpha mid 2.00, 1.988..2.012 holds 10 + 20; beta mid 2.02, 2.00788..2.03212 holds 6 + 4; gamma none
    assert ref.value == pytest.approx((2.00 * 30 + 2.02 * 10) / 40)
    assert ref.reason == ""


def test_liquidity_weighted_reference_falls_back_to_equal_weights_without_depth() -> None:
    ref = _price(ReferenceKind.LIQUIDITY_WEIGHTED, ["gamma"], depth_bps=1)
    assert ref.value == pytest.approx(2.06)
    assert "equal weights" in ref.reason


def test_single_venue_reference_is_that_venues_mid_or_microprice() -> None:
    assert _price(ReferenceKind.SINGLE, ["beta"]).value == pytest.approx(2.02)
    micro = _price(ReferenceKind.SINGLE, ["beta"], price="microprice")
    assert micro.value == pytest.approx((2.015 * 4 + 2.025 * 6) / 10)


def test_stale_and_out_of_sync_books_are_excluded_and_named() -> None:
    books = _books()
    books[("beta", SYMBOL)].health = BookHealth(state=SyncState.RESYNCING, reason="gap")
    books[("gamma", SYMBOL)] = _book("gamma", [(1.96, 5)], [(2.16, 5)], ts=NOW - 10)
    ref = reference_price(ReferenceSpec(ReferenceKind.AGGREGATED, max_age_s=5), books, SYMBOL, NOW)
    assert ref.venues_used == ["alpha"]
    assert ref.value == pytest.approx(2.00)
    reasons = dict(ref.excluded)
    assert reasons["beta"] == "resyncing: gap"
    assert reasons["gamma"].startswith("stale")


def test_no_usable_book_gives_no_value_and_says_why() -> None:
    books = _books()
    books[("beta", SYMBOL)].health = BookHealth(state=SyncState.DISCONNECTED)
    ref = reference_price(ReferenceSpec(ReferenceKind.SINGLE, ["beta"]), books, SYMBOL, NOW)
    assert ref.value is None and not ref.ok
    assert ref.excluded == [("beta", "disconnected")]
    assert "no usable book" in ref.reason
    missing = reference_price(ReferenceSpec(ReferenceKind.SINGLE, ["omega"]), books, SYMBOL, NOW)
    assert missing.value is None and missing.excluded == [("omega", "no book")]


def test_a_crossed_single_book_is_not_trusted() -> None:
    books = {("alpha", SYMBOL): _book("alpha", [(2.05, 1)], [(2.01, 1)])}
    ref = reference_price(ReferenceSpec(ReferenceKind.SINGLE, ["alpha"]), books, SYMBOL, NOW)
    assert ref.value is None and ref.excluded == [("alpha", "crossed")]


def test_one_sided_books_are_excluded_where_a_mid_is_needed() -> None:
    books = _books()
    books[("beta", SYMBOL)] = _book("beta", [(2.015, 6)], [])
    ref = reference_price(ReferenceSpec(ReferenceKind.LIQUIDITY_WEIGHTED), books, SYMBOL, NOW)
    assert ("beta", "one-sided") in ref.excluded
    # an aggregated price can still use beta's bid
    agg = reference_price(ReferenceSpec(ReferenceKind.AGGREGATED), books, SYMBOL, NOW)
    assert "beta" in agg.venues_used


def test_reference_over_the_aggregator_includes_cross_books() -> None:
    spec = CombinedBookSpec(SYMBOL, ["alpha"], cross=[CrossSpec("BERA/BTC", "BTC/USDT", venues=["gamma"])])
    agg = Aggregator([spec])
    agg.update(_book("alpha", [(1.90, 10)], [(2.10, 10)]))
    agg.update(_book("gamma", [(0.00002, 100)], [(0.000021, 100)], symbol="BERA/BTC"))
    agg.update(_book("gamma", [(100_000.0, 1)], [(100_000.0, 1)], symbol="BTC/USDT"))
    # cross book: bid 2.00, ask 2.10
    ref = reference_price(ReferenceSpec(ReferenceKind.AGGREGATED), agg, SYMBOL, NOW)
    assert ref.value == pytest.approx((2.00 + 2.10) / 2)
    assert sorted(ref.venues_used) == ["alpha", "gamma:BERA/BTC"]
    single = reference_price(ReferenceSpec(ReferenceKind.SINGLE, ["gamma:BERA/BTC"]), agg, SYMBOL, NOW)
    assert single.value == pytest.approx(2.05)


def test_spec_rejects_a_kind_without_the_venues_it_needs() -> None:
    with pytest.raises(ValueError, match="exactly one venue"):
        ReferenceSpec(ReferenceKind.SINGLE, ["alpha", "beta"])
    with pytest.raises(ValueError, match="needs its venues"):
        ReferenceSpec(ReferenceKind.COMPONENT)
    with pytest.raises(ValueError, match="every venue"):
        ReferenceSpec(ReferenceKind.AGGREGATED, ["alpha"])
    assert ReferenceKind("liquidity_weighted") is ReferenceKind.LIQUIDITY_WEIGHTED


# ---------------------------------------------------------------- properties

_quotes = st.tuples(
    st.floats(min_value=1.0, max_value=2.0),  # bid
    st.floats(min_value=0.0001, max_value=0.2),  # spread
    st.floats(min_value=0.1, max_value=100.0),  # bid size
    st.floats(min_value=0.1, max_value=100.0),  # ask size
)


@settings(max_examples=100, deadline=None)
@given(quotes=st.lists(_quotes, min_size=1, max_size=4), price=st.sampled_from(["mid", "microprice"]))
def test_aggregated_reference_agrees_with_the_combined_book_and_weighted_stays_within_the_mids(
    quotes: list[tuple[float, float, float, float]], price: PriceField
) -> None:
    venues = [f"v{i}" for i in range(len(quotes))]
    books = {
        (v, SYMBOL): _book(v, [(bid, bid_size), (bid * 0.99, 5.0)], [(bid + spread, ask_size)])
        for v, (bid, spread, bid_size, ask_size) in zip(venues, quotes, strict=True)
    }
    agg = Aggregator([CombinedBookSpec(SYMBOL, venues)])
    for book in books.values():
        agg.update(book)
    combined = agg.combined(SYMBOL)
    ref = reference_price(ReferenceSpec(ReferenceKind.AGGREGATED, price=price), agg, SYMBOL, NOW)
    expected = combined.mid() if price == "mid" else combined.microprice()
    assert ref.value == pytest.approx(expected, rel=1e-12)
    weighted = reference_price(
        ReferenceSpec(ReferenceKind.LIQUIDITY_WEIGHTED, price=price), books, SYMBOL, NOW
    )
    mids = [b.mid() if price == "mid" else b.microprice() for b in books.values()]
    assert weighted.value is not None
    assert (
        min(m for m in mids if m is not None) - 1e-12
        <= weighted.value
        <= max(m for m in mids if m is not None) + 1e-12
    )
