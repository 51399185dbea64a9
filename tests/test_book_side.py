"""The compiled book side against the Python one: same floats, same levels, same answers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.book_side import ACCELERATED, BookSide, PyBookSide


def test_the_compiled_side_is_built_and_in_use() -> None:
    # `make` (pip install -e .) builds strategies/_book_side.c; a silent fallback to Python
    # would cost the feed a third of its throughput (bench/feed_throughput.py).
    from strategies._book_side import Side

    assert ACCELERATED and BookSide is Side


# ---------------------------------------------------------------- number conversion

_DECIMALS = st.one_of(
    # the wire's plain decimals, up to and beyond the fast path's 15 digits / 22 decimals
    st.builds(
        lambda digits, point: digits if point is None else digits[:point] + "." + digits[point:],
        st.text("0123456789", min_size=1, max_size=30),
        st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
    ),
    # everything else float() accepts or refuses
    st.sampled_from([
        "-0", "-1.5", "1e-8", "2.5E3", " 1.0", "1_000.5", "nan", "inf", "-inf", ".", "", "1.2.3", "0x10",
        "٣", "1.0 ", "+2", "00.000", "9007199254740993", "0.1000000000000000055511151231257827",
        "123456789012345", "1234567890123456", "0.0000000000000000000001", "0.00000000000000000000001",
    ]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


@settings(max_examples=3000, deadline=None)
@given(text=_DECIMALS)
def test_compiled_conversion_gives_exactly_the_float_python_gives(text: str) -> None:
    from strategies._book_side import parse_decimal

    try:
        expected = float(text)
    except ValueError:
        with pytest.raises(ValueError):
            parse_decimal(text)
        return
    got = parse_decimal(text)
    assert type(got) is float
    assert got == expected or (math.isnan(got) and math.isnan(expected))
    assert math.copysign(1.0, got) == math.copysign(1.0, expected)


# ---------------------------------------------------------------- the side

_prices = st.integers(min_value=1, max_value=60).map(lambda i: f"{i / 4:.2f}")
_qtys = st.one_of(
    st.sampled_from(["0", "0.00", "-1"]),
    st.integers(min_value=1, max_value=999).map(lambda i: f"{i / 7:.4f}"),
)
_level = st.one_of(
    st.tuples(_prices, _qtys).map(list),
    st.tuples(_prices.map(float), _qtys.map(float)),
    st.tuples(st.integers(min_value=1, max_value=15), st.integers(min_value=-1, max_value=3)).map(list),
    st.tuples(_prices, _qtys, st.integers()).map(list),  # an extra field is ignored
)
_op = st.one_of(
    st.tuples(st.just("apply"), st.lists(_level, max_size=15)),
    st.tuples(st.just("trim"), st.integers(min_value=0, max_value=40)),
    st.tuples(st.just("clear"), st.none()),
)
_probes = [i / 8 for i in range(0, 130)] + [-1.0, 1e9]


def _same(c: PyBookSide, py: PyBookSide) -> None:
    assert len(c) == len(py)
    assert c.best() == py.best() and c.best_qty() == py.best_qty()
    assert list(c.levels()) == list(py.levels())
    for n in (-1, 0, 1, 3, 100):
        assert c.top(n) == py.top(n)
    for price in _probes:
        assert c.qty(price) == py.qty(price)
        assert c.depth_to(price) == py.depth_to(price)  # same summation order: equal floats
    assert all(type(p) is float and type(q) is float for p, q in c.levels())


@settings(max_examples=400, deadline=None)
@given(
    ops=st.lists(_op, min_size=1, max_size=30),
    negate=st.booleans(),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=12)),
)
def test_compiled_side_answers_exactly_as_the_python_side(
    ops: list[tuple[str, object]], negate: bool, limit: int | None
) -> None:
    c = BookSide(negate, limit)
    py = PyBookSide(negate, limit)
    for name, arg in ops:
        for side in (c, py):
            if name == "apply":
                side.apply(arg)  # type: ignore[arg-type]
            elif name == "trim":
                side.trim(arg)  # type: ignore[arg-type]
            else:
                side.clear()
        _same(c, py)
        if limit is not None:
            assert len(c) <= limit
    levels = list(c.levels())
    prices = [p for p, _ in levels]
    assert prices == sorted(prices, reverse=not negate)  # best first: bids descending, asks ascending


@pytest.mark.parametrize("side_class", [BookSide, PyBookSide])
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (["2.6"], ValueError),  # not a pair
        ([["2.6"]], ValueError),
        ([["x", "1"]], ValueError),
        ([["nan", "1"]], ValueError),  # a price that is not a number would break the ordering
        ([[None, "1"]], TypeError),
    ],
)
def test_bad_levels_raise_after_the_good_ones_before_them_applied(
    side_class: type[PyBookSide], bad: list[object], error: type[Exception]
) -> None:
    side = side_class(False)
    with pytest.raises(error):
        side.apply([["1.0", "1"], *bad, ["3.0", "1"]])  # type: ignore[list-item]
    assert list(side.levels()) == [(1.0, 1.0)]


def test_iterating_while_the_side_changes_never_reads_past_its_end() -> None:
    side = BookSide(False)
    side.apply([[float(i), 1.0] for i in range(1, 11)])
    walked = []
    for price, _ in side.levels():
        walked.append(price)
        side.trim(max(0, len(side) - 3))
    assert walked[0] == 10.0 and len(walked) < 10
    assert len(side) == 0 or side.best() == 10.0


def test_a_thousand_level_snapshot_in_reverse_order_keeps_every_level_sorted() -> None:
    # Binance lists bids best first: every insert lands at the front of the compiled arrays
    side = BookSide(False)
    side.apply([[f"{2.0 - i * 1e-4:.4f}", "1"] for i in range(1000)])
    prices = [p for p, _ in side.levels()]
    assert len(prices) == 1000 and prices == sorted(prices, reverse=True) and prices[0] == 2.0


@pytest.mark.parametrize("side_class", [BookSide, PyBookSide])
def test_a_limit_keeps_the_best_levels_and_must_be_positive(side_class: type[PyBookSide]) -> None:
    asks = side_class(True, 2)
    asks.apply([["2.3", "1"], ["2.1", "1"], ["2.2", "1"], ["2.4", "1"]])
    assert list(asks.levels()) == [(2.1, 1.0), (2.2, 1.0)]
    for bad in (0, -1):
        with pytest.raises(ValueError):
            side_class(False, bad)
