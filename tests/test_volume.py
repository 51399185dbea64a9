"""Volume moving averages (SMA over buckets, exact EWMA) and the bounded volume coefficient."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.clock import ManualClock
from strategies.types import Side, Trade
from strategies.volume import VolumeCoefficientSpec, VolumeTracker, VolumeTrackers

T0 = 1_700_000_000.0


def _trade(ts: float, qty: float, price: float = 10.0, side: Side = Side.BUY, venue: str = "alpha") -> Trade:
    return Trade(venue=venue, symbol="BERA/USDT", price=price, qty=qty, taker_side=side, ts=ts)


def _tracker(spec: VolumeCoefficientSpec, history_s: float = 300.0) -> tuple[VolumeTracker, ManualClock]:
    clock = ManualClock(T0)
    return VolumeTracker(spec, clock, started_at=T0 - history_s), clock


def _busy_lately() -> list[Trade]:
    """A trade every 10 s over the last 300 s: qty 1, then 3 in the last minute; buys and sells alternate."""
    trades = []
    for k in range(30):
        ts = T0 - 295 + 10 * k
        trades.append(_trade(ts, 1.0 if ts < T0 - 60 else 3.0, side=Side.BUY if k % 2 == 0 else Side.SELL))
    return trades


# ---------------------------------------------------------------- SMA and coefficient by hand


def test_sma_rates_and_coefficient_match_hand_calculation() -> None:
    tracker, _ = _tracker(VolumeCoefficientSpec(periods_s=[60, 300], bucket_s=1.0))
    for trade in _busy_lately():
        tracker.on_trade(trade)
    short, long = tracker.rates()
    # last 60 s: 6 trades x 3 = 18 -> 0.3/s; last 300 s: 24 x 1 + 18 = 42 -> 0.14/s
    assert short.base == pytest.approx(18 / 60)
    assert long.base == pytest.approx(42 / 300)
    assert short.quote == pytest.approx(180 / 60)
    assert short.buy == pytest.approx(9 / 60) and short.sell == pytest.approx(9 / 60)
    status = tracker.status()
    assert status.warm
    assert status.value == pytest.approx((18 / 60) / (42 / 300))
    assert tracker.coefficient() == status.value


def test_coefficient_is_clipped_to_its_bounds() -> None:
    spec = VolumeCoefficientSpec(periods_s=[60, 300], bucket_s=1.0, min_coefficient=0.5, max_coefficient=2.0)
    busy, _ = _tracker(spec)
    for trade in _busy_lately():
        busy.on_trade(trade)
    assert busy.coefficient() == 2.0  # raw 2.14
    quiet, clock = _tracker(spec)
    for trade in _busy_lately():
        quiet.on_trade(trade)
    clock.advance(100)  # nothing in the last 60 s
    status = quiet.status()
    assert status.ratios == (0.0,)
    assert status.value == 0.5


def test_coefficient_combines_pair_ratios_by_min_max_or_mid() -> None:
    # periods 60 / 120 / 300: last 60 s holds 18, last 120 s holds 18 + 6 = 24, 300 s holds 42
    ratios = ((18 / 60) / (24 / 120), (24 / 120) / (42 / 300))
    for combine, expected in (("min", min(ratios)), ("max", max(ratios)), ("mid", sum(ratios) / 2)):
        tracker, _ = _tracker(VolumeCoefficientSpec(periods_s=[60, 120, 300], bucket_s=1.0, combine=combine))  # type: ignore[arg-type]
        for trade in _busy_lately():
            tracker.on_trade(trade)
        assert tracker.status().ratios == pytest.approx(ratios)
        assert tracker.coefficient() == pytest.approx(expected)


def test_mid_of_an_odd_number_of_ratios_is_the_median() -> None:
    # "both" on three periods: four ratios (base and quote per pair); a middle pair of equal values
    tracker, _ = _tracker(
        VolumeCoefficientSpec(periods_s=[60, 120, 300], bucket_s=1.0, combine="mid", volume_type="both")
    )
    for trade in _busy_lately():
        tracker.on_trade(trade)
    ratios = sorted(tracker.status().ratios)
    assert len(ratios) == 4
    assert tracker.coefficient() == pytest.approx((ratios[1] + ratios[2]) / 2)


def test_quote_volume_type_sees_price_as_well_as_size() -> None:
    spec = VolumeCoefficientSpec(periods_s=[60, 300], bucket_s=1.0, volume_type="quote")
    tracker, _ = _tracker(spec)
    # the same base volume throughout, but the last minute trades at twice the price
    for k in range(30):
        ts = T0 - 295 + 10 * k
        tracker.on_trade(_trade(ts, 1.0, price=20.0 if ts >= T0 - 60 else 10.0))
    # quote: last 60 s 6 x 20 = 120 -> 2/s; 300 s: 24 x 10 + 120 = 360 -> 1.2/s
    assert tracker.coefficient() == pytest.approx(2 / 1.2)
    base = VolumeTracker(VolumeCoefficientSpec(periods_s=[60, 300], bucket_s=1.0), ManualClock(T0), T0 - 300)
    for k in range(30):
        base.on_trade(_trade(T0 - 295 + 10 * k, 1.0))
    assert base.coefficient() == pytest.approx((6 / 60) / (30 / 300))


def test_imbalance_and_ratio_types_measure_how_one_sided_the_flow_is() -> None:
    trades = []
    for k in range(30):
        ts = T0 - 295 + 10 * k
        if ts >= T0 - 60:  # last minute: 5 buys of 1, 1 sell of 1
            side = Side.SELL if k == 29 else Side.BUY
        else:  # before: balanced
            side = Side.BUY if k % 2 == 0 else Side.SELL
        trades.append(_trade(ts, 1.0, side=side))
    # short: buy 5, sell 1 -> I = 4/6, D = 5; long: buy 12 + 5 = 17, sell 12 + 1 = 13 -> I = 4/30, D = 17/13
    imbalance, _ = _tracker(VolumeCoefficientSpec(periods_s=[60, 300], bucket_s=1.0, volume_type="imbalance"))
    ratio, _ = _tracker(
        VolumeCoefficientSpec(periods_s=[60, 300], bucket_s=1.0, volume_type="ratio", max_coefficient=5.0)
    )
    for trade in trades:
        imbalance.on_trade(trade)
        ratio.on_trade(trade)
    assert imbalance.rates()[0].imbalance == pytest.approx(4 / 6)
    assert imbalance.coefficient() == pytest.approx((1 + 4 / 6) / (1 + 4 / 30))
    assert ratio.coefficient() == pytest.approx(5 / (17 / 13))


# ---------------------------------------------------------------- history and warm start


def test_coefficient_is_neutral_until_history_covers_a_pair() -> None:
    clock = ManualClock(T0)
    tracker = VolumeTracker(VolumeCoefficientSpec(periods_s=[60, 120, 300], bucket_s=1.0), clock)
    tracker.on_trade(_trade(T0 + 20, 5.0))
    clock.advance(30)
    status = tracker.status()
    assert (status.value, status.warm) == (1.0, False)
    assert "history 30s shorter than 120s" in status.reason
    tracker.on_trade(_trade(T0 + 100, 5.0))
    clock.advance(100)  # 130 s: the 60/120 pair is ready, the 120/300 pair not yet
    status = tracker.status()
    assert not status.warm
    assert status.ratios == pytest.approx(((5 / 60) / (10 / 120),))
    clock.advance(200)
    assert tracker.status().warm


def test_warm_start_replays_persisted_trades_so_a_restart_is_not_blind() -> None:
    clock = ManualClock(T0)
    spec = VolumeCoefficientSpec(periods_s=[60, 300], bucket_s=1.0)
    restarted = VolumeTracker(spec, clock)
    assert restarted.status().warm is False
    trades = _busy_lately()
    random.Random(7).shuffle(trades)  # the store need not return them in order
    assert restarted.warm_start(trades, since=T0 - 300) == 30
    status = restarted.status()
    assert status.warm
    assert status.value == pytest.approx((18 / 60) / (42 / 300))
    # without `since`, history counts from the first trade (295 s: not yet the full 300 s)
    other = VolumeTracker(spec, clock)
    other.warm_start(_busy_lately())
    assert other.history_s() == pytest.approx(295) and not other.status().warm


def test_a_long_silence_empties_the_windows() -> None:
    tracker, clock = _tracker(VolumeCoefficientSpec(periods_s=[60, 300], bucket_s=1.0))
    for trade in _busy_lately():
        tracker.on_trade(trade)
    clock.advance(10_000)
    assert [r.base for r in tracker.rates()] == [0.0, 0.0]
    assert tracker.status().reason == "no volume to compare"
    tracker.on_trade(_trade(clock.time() - 1, 2.0))
    assert tracker.rates()[0].base == pytest.approx(2 / 60)


def test_trackers_keep_one_tracker_per_venue_and_symbol() -> None:
    clock = ManualClock(T0)
    trackers = VolumeTrackers(VolumeCoefficientSpec(periods_s=[60, 300], bucket_s=1.0), clock)
    busy = _busy_lately()
    quiet = [_trade(t.ts, 1.0, venue="beta") for t in busy]
    assert trackers.warm_start(busy + quiet, since=T0 - 300) == 60
    assert trackers.coefficient("alpha", "BERA/USDT") == pytest.approx((18 / 60) / (42 / 300))
    assert trackers.coefficient("beta", "BERA/USDT") == pytest.approx(1.0)
    trackers.on_trade(_trade(T0, 30.0, venue="beta"))
    assert trackers.coefficient("beta", "BERA/USDT") > 1.0


def test_spec_validates_periods_and_bounds() -> None:
    with pytest.raises(ValueError, match="increasing"):
        VolumeCoefficientSpec(periods_s=[300])
    with pytest.raises(ValueError, match="increasing"):
        VolumeCoefficientSpec(periods_s=[300, 60])
    with pytest.raises(ValueError, match="min_coefficient"):
        VolumeCoefficientSpec(min_coefficient=1.5)
    assert VolumeCoefficientSpec().bucket_width == 1.0


# ---------------------------------------------------------------- properties

_trade_times = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=900.0),  # seconds after T0
        st.floats(min_value=0.001, max_value=100.0),
        st.booleans(),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=100, deadline=None)
@given(
    drawn=_trade_times,
    width=st.sampled_from([0.5, 1.0, 2.5, 10.0]),
    after=st.floats(min_value=0.0, max_value=400.0),
    shuffle_seed=st.integers(min_value=0, max_value=3),
)
def test_sma_equals_a_brute_force_sum_over_the_window_buckets(
    drawn: list[tuple[float, float, bool]], width: float, after: float, shuffle_seed: int
) -> None:
    periods = (20.0, 60.0, 150.0)
    spec = VolumeCoefficientSpec(periods_s=periods, bucket_s=width)
    trades = [_trade(T0 + t, q, side=Side.BUY if b else Side.SELL) for t, q, b in drawn]
    if shuffle_seed:  # a little disorder, as from a merged replay
        random.Random(shuffle_seed).shuffle(trades)
    clock = ManualClock(T0)
    tracker = VolumeTracker(spec, clock, started_at=T0 - 1_000)
    for trade in trades:
        tracker.on_trade(trade)
    now = max(t.ts for t in trades) + after
    head = math.floor(now / width)
    for rates, period in zip(tracker.rates(now), periods, strict=True):
        n = max(1, round(period / width))
        window = [t for t in trades if head - n < math.floor(t.ts / width) <= head]
        assert rates.base == pytest.approx(sum(t.qty for t in window) / period, rel=1e-9, abs=1e-9)
        assert rates.quote == pytest.approx(sum(t.qty * t.price for t in window) / period, rel=1e-9, abs=1e-9)
        buys = sum(t.qty for t in window if t.taker_side is Side.BUY)
        assert rates.buy == pytest.approx(buys / period, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(drawn=_trade_times, after=st.floats(min_value=0.0, max_value=2000.0))
def test_ewma_equals_the_direct_exponential_sum(drawn: list[tuple[float, float, bool]], after: float) -> None:
    periods = (30.0, 120.0, 600.0)
    start = T0 - 50
    spec = VolumeCoefficientSpec(periods_s=periods, average="ewma")
    tracker = VolumeTracker(spec, ManualClock(T0), started_at=start)
    trades = [_trade(T0 + t, q, price=2.0, side=Side.BUY if b else Side.SELL) for t, q, b in drawn]
    for trade in trades:  # arrival order as drawn: late trades included
        tracker.on_trade(trade)
    now = max(t.ts for t in trades) + after
    for rates, tau in zip(tracker.rates(now), periods, strict=True):
        norm = tau * (1 - math.exp(-(now - start) / tau))
        direct = sum(t.qty * math.exp(-(now - t.ts) / tau) for t in trades) / norm
        assert rates.base == pytest.approx(direct, rel=1e-9, abs=1e-12)
        assert rates.quote == pytest.approx(2 * direct, rel=1e-9, abs=1e-12)


def test_ewma_of_a_steady_rate_is_that_rate_from_the_start() -> None:
    clock = ManualClock(T0)
    tracker = VolumeTracker(VolumeCoefficientSpec(periods_s=[60, 600], average="ewma"), clock)
    for k in range(1, 121):  # 2 units per second, as one trade each second
        tracker.on_trade(_trade(T0 + k, 2.0))
    rates = tracker.rates(T0 + 120)
    # a unit-spaced train approximates the continuous rate within one trade's worth of bias
    assert rates[0].base == pytest.approx(2.0, rel=0.02)
    assert rates[1].base == pytest.approx(2.0, rel=0.02)
