"""Risk limits, as pure units: every limit drops or shrinks targets, or pauses, and says so once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.clock import ManualClock
from strategies.risk import RiskConfig, RiskContext, RiskEngine
from strategies.types import BookHealth, MarketRules, QuoteTarget, Side, SyncState, TargetSet

D = Decimal
RULES = MarketRules("BERA/USDT", tick=D("0.0001"), step=D("1"), min_qty=D("1"), min_notional=D("1"))


def target(
    side: Side, price: str, size: str, level: int = 0, venue: str = "alpha", symbol: str = "BERA/USDT"
) -> QuoteTarget:
    return QuoteTarget(venue, symbol, side, D(price), D(size), "passive", level)


def context(
    positions: dict[str, Decimal] | None = None,
    resting: dict[tuple[str, str, Side], Decimal] | None = None,
    reference: float = 2.0,
    health: dict[tuple[str, str], BookHealth] | None = None,
    rules: bool = True,
) -> RiskContext:
    return RiskContext(
        positions=positions or {"BERA": D(0), "USDT": D(10_000)},
        resting=resting or {},
        reference_prices={"BERA/USDT": reference, "ETH/USDT": 3000.0},
        book_health=health or {},
        assets={"BERA/USDT": ("BERA", "USDT"), "ETH/USDT": ("ETH", "USDT")},
        rules={("alpha", "BERA/USDT"): RULES, ("beta", "BERA/USDT"): RULES} if rules else {},
    )


def engine(clock: ManualClock | None = None, **config: object) -> RiskEngine:
    return RiskEngine(RiskConfig.model_validate(config), clock or ManualClock())


def in_sync(now: float) -> BookHealth:
    return BookHealth(SyncState.IN_SYNC, last_update_ts=now)


# ---------------------------------------------------------------- position limits


def test_position_limit_counts_resting_orders_elsewhere_and_shrinks_then_drops() -> None:
    risk = engine(position_limits={"BERA": {"max": "100"}})
    ctx = context(positions={"BERA": D(90)}, resting={("beta", "BERA/USDT", Side.BUY): D(5)})
    wanted = TargetSet("alpha", [target(Side.BUY, "1.99", "3", level) for level in range(3)])
    passed, events = risk.check(wanted, ctx)
    # room = 100 − 90 − 5 (beta's bids, if they all fill) = 5: level 0 keeps 3, level 1 shrinks to 2
    assert [(t.level, t.size) for t in passed.targets] == [(0, D(3)), (1, D(2))]
    assert [e.kind for e in events] == ["position_limit", "position_limit"]
    assert "shrunk to 2" in events[0].detail and "dropped" in events[1].detail
    # the same limit biting again is not a new event
    assert risk.check(wanted, ctx)[1] == []


def test_resting_orders_on_the_same_venue_are_replaced_not_added() -> None:
    risk = engine(position_limits={"BERA": {"max": "100"}})
    ctx = context(positions={"BERA": D(95)}, resting={("alpha", "BERA/USDT", Side.BUY): D(5)})
    passed, _ = risk.check(TargetSet("alpha", [target(Side.BUY, "1.99", "5")]), ctx)
    assert [t.size for t in passed.targets] == [D(5)]


def test_short_limit_caps_asks_and_quote_asset_floor_caps_bids_by_notional() -> None:
    risk = engine(position_limits={"BERA": {"min": "10"}, "USDT": {"min": "1000"}})
    ctx = context(positions={"BERA": D(14), "USDT": D(1020)})
    wanted = TargetSet("alpha", [target(Side.SELL, "2.01", "10"), target(Side.BUY, "1.99", "50")])
    passed, events = risk.check(wanted, ctx)
    sizes = {t.side: t.size for t in passed.targets}
    assert sizes[Side.SELL] == D(4)  # 14 − 10
    assert sizes[Side.BUY] == D(10)  # 20 USDT of room / 1.99 = 10.05 → 10 on the step
    assert {e.kind for e in events} == {"position_limit"}


def test_without_market_rules_a_target_that_does_not_fit_is_dropped() -> None:
    risk = engine(position_limits={"BERA": {"max": "100"}})
    passed, _ = risk.check(
        TargetSet("alpha", [target(Side.BUY, "1.99", "20")]), context(positions={"BERA": D(90)}, rules=False)
    )
    assert passed.targets == []


@settings(max_examples=150, deadline=None)
@given(
    position=st.integers(-50, 150),
    resting_bid=st.integers(0, 40),
    resting_ask=st.integers(0, 40),
    sizes=st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 30)), max_size=8),
)
def test_inventory_never_passes_its_limits_even_if_every_resting_order_fills_at_once(
    position: int, resting_bid: int, resting_ask: int, sizes: list[tuple[Side, int]]
) -> None:
    risk = engine(position_limits={"BERA": {"min": "-20", "max": "100"}}, price_band_bps=None)
    ctx = context(
        positions={"BERA": D(position)},
        resting={
            ("beta", "BERA/USDT", Side.BUY): D(resting_bid),
            ("beta", "BERA/USDT", Side.SELL): D(resting_ask),
        },
    )
    wanted = [target(side, "2", str(size), level) for level, (side, size) in enumerate(sizes)]
    passed, _ = risk.check(TargetSet("alpha", wanted), ctx)
    bought = sum((t.size for t in passed.targets if t.side is Side.BUY), D(0))
    sold = sum((t.size for t in passed.targets if t.side is Side.SELL), D(0))
    if bought:
        assert position + resting_bid + bought <= 100
    if sold:
        assert position - resting_ask - sold >= -20
    # nothing is dropped that would have fitted whole, in ladder order
    assert all(t.size > 0 for t in passed.targets)


# ---------------------------------------------------------------- per-order limits


def test_max_order_size_and_notional_shrink_orders_per_symbol() -> None:
    risk = engine(orders={"max_size": "50"}, symbols={"BERA/USDT": {"max_size": "40", "max_notional": "60"}})
    passed, events = risk.check(TargetSet("alpha", [target(Side.BUY, "2", "100")]), context())
    assert [t.size for t in passed.targets] == [D(30)]  # 40 by size, then 60 USDT / 2
    assert [e.kind for e in events] == ["max_order_size", "max_order_notional"]


def test_price_band_drops_fat_finger_prices_and_unreferenced_symbols() -> None:
    risk = engine(price_band_bps=100)
    wanted = TargetSet(
        "alpha",
        [
            target(Side.BUY, "1.99", "5"),  # 50 bps from 2.0: fine
            target(Side.SELL, "2.03", "5"),  # 150 bps: dropped
            target(Side.BUY, "0.2", "5", symbol="XYZ/USDT"),  # no reference price
        ],
    )
    passed, events = risk.check(wanted, context())
    assert [(t.side, t.price) for t in passed.targets] == [(Side.BUY, D("1.99"))]
    assert sorted(e.kind for e in events) == ["no_reference", "price_band"]
    assert next(e for e in events if e.kind == "price_band").severity == "critical"


def test_price_band_edge_is_the_float_distance_and_inside_prices_pass() -> None:
    risk = engine(price_band_bps=100)
    wanted = TargetSet(
        "alpha",
        [
            target(Side.BUY, "1.9801", "5"),  # 99.5 bps: kept
            target(Side.SELL, "2.0199", "5"),  # 99.5 bps: kept
            target(Side.BUY, "1.98", "5", level=1),  # 100.00000000000009 bps as floats: dropped
            target(Side.SELL, "2.02", "5", level=1),
        ],
    )
    passed, events = risk.check(wanted, context())
    assert [t.price for t in passed.targets] == [D("1.9801"), D("2.0199")]
    assert [e.kind for e in events] == ["price_band", "price_band"]


def test_a_limit_biting_again_reports_nothing_and_once_released_reports_anew() -> None:
    risk = engine(position_limits={"BERA": {"max": "100"}}, orders={"max_size": "4"})
    full = context(positions={"BERA": D(100)})
    wanted = TargetSet("alpha", [target(Side.BUY, "1.99", "5"), target(Side.SELL, "2.01", "5")])
    passed, events = risk.check(wanted, full)
    assert [(t.side, t.size) for t in passed.targets] == [(Side.SELL, D(4))]
    assert [e.kind for e in events] == ["max_order_size", "max_order_size", "position_limit"]
    assert "BERA limit: buy 4 would pass it; dropped" in events[2].detail  # after the size cap
    assert risk.check(wanted, full)[1] == []
    assert [e.kind for e in risk.check(wanted, context(positions={"BERA": D(0)}))[1]] == []
    assert [e.kind for e in risk.check(wanted, full)[1]] == ["position_limit"]


# ---------------------------------------------------------------- PnL limits


def test_daily_loss_pulls_every_quote_and_stays_paused_until_resumed() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp())
    risk = engine(clock, pnl={"daily_loss": "100"})
    assert risk.on_mark(1000.0) == []
    events = risk.on_mark(899.0)
    assert [e.kind for e in events] == ["daily_loss"] and events[0].pulls_quotes and risk.paused
    assert risk.reason is not None and "daily_loss" in risk.reason
    for venue in ("alpha", "beta"):
        passed, _ = risk.check(TargetSet(venue, [target(Side.BUY, "1.99", "5", venue=venue)]), context())
        assert passed.targets == []
    risk.on_mark(1200.0)  # back in profit: still paused, only an operator resumes
    clock.advance(86_400)
    risk.on_mark(1200.0)
    assert risk.paused
    risk.resume()
    assert not risk.paused
    passed, events = risk.check(TargetSet("alpha", [target(Side.BUY, "1.99", "5")]), context())
    assert len(passed.targets) == 1 and [e.kind for e in events] == ["resumed"]


def test_drawdown_is_measured_from_the_peak_not_from_the_start() -> None:
    risk = engine(pnl={"max_drawdown": "50"})
    risk.on_mark(0.0)
    risk.on_mark(120.0)
    assert risk.on_mark(71.0) == []
    events = risk.on_mark(70.0)  # still +70 on the day, but 50 below the peak
    assert [e.kind for e in events] == ["drawdown"] and risk.paused
    risk.resume()
    assert risk.on_mark(60.0) == []  # measured again from the resume point


def test_daily_loss_resets_at_the_configured_utc_hour() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 7, 0, tzinfo=UTC).timestamp())
    risk = engine(clock, pnl={"daily_loss": "100", "reset_hour_utc": 8})
    risk.on_mark(0.0)
    risk.on_mark(-90.0)
    clock.set(datetime(2026, 3, 2, 8, 30, tzinfo=UTC).timestamp())
    assert risk.on_mark(-150.0) == []  # a new day started at −90: only −60 today
    assert risk.on_mark(-191.0)[0].kind == "daily_loss"


def test_daily_profit_target_widens_spreads_until_the_next_day() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp())
    risk = engine(clock, pnl={"daily_profit_target": "500", "profit_target_spread_factor": 1.5})
    risk.on_mark(0.0)
    events = risk.on_mark(510.0)
    assert [e.kind for e in events] == ["profit_target"] and not risk.paused
    assert risk.spread_factor() == 1.5
    clock.advance(86_400)
    risk.on_mark(510.0)
    assert risk.spread_factor() == 1.0


# ---------------------------------------------------------------- volatility limits


def test_volatility_spike_widens_then_stops_then_resumes_quoting() -> None:
    risk = engine(volatility={"widen_above": 10, "widen_factor": 2.0, "stop_above": 30})
    quotes = TargetSet("alpha", [target(Side.BUY, "1.99", "5")])
    assert risk.on_volatility(5.0, "BERA/USDT") == [] and risk.spread_factor("BERA/USDT") == 1.0
    assert [e.kind for e in risk.on_volatility(15.0, "BERA/USDT")] == ["volatility_widen"]
    assert risk.spread_factor("BERA/USDT") == 2.0
    assert len(risk.check(quotes, context())[0].targets) == 1
    stop = risk.on_volatility(40.0, "BERA/USDT")
    assert [e.kind for e in stop] == ["volatility_stop"] and stop[0].pulls_quotes
    assert risk.check(quotes, context())[0].targets == []
    assert risk.on_volatility(26.0, "BERA/USDT") == []  # hysteresis: resumes below 0.8 × 30
    assert risk.check(quotes, context())[0].targets == []
    assert [e.kind for e in risk.on_volatility(20.0, "BERA/USDT")] == ["volatility_resume"]
    assert len(risk.check(quotes, context())[0].targets) == 1 and risk.spread_factor("BERA/USDT") == 2.0
    assert risk.on_volatility(9.0, "BERA/USDT") == []  # stays wide until below 0.8 × 10
    assert [e.kind for e in risk.on_volatility(7.0, "BERA/USDT")] == ["volatility_normal"]
    assert risk.spread_factor("BERA/USDT") == 1.0
    assert not risk.paused  # volatility never needs an operator


def test_volatility_stop_on_one_symbol_leaves_others_quoting() -> None:
    risk = engine(volatility={"stop_above": 30}, price_band_bps=None)
    risk.on_volatility(50.0, "ETH/USDT")
    wanted = TargetSet(
        "alpha", [target(Side.BUY, "1.99", "5"), target(Side.BUY, "2990", "1", symbol="ETH/USDT")]
    )
    assert [t.symbol for t in risk.check(wanted, context())[0].targets] == ["BERA/USDT"]


# ---------------------------------------------------------------- book health


def test_stale_book_pulls_that_venues_quotes_until_it_is_in_sync() -> None:
    clock = ManualClock()
    risk = engine(clock)
    events = risk.on_book_health("alpha", "BERA/USDT", BookHealth(SyncState.RESYNCING, reason="sequence gap"))
    assert [e.kind for e in events] == ["stale_book"] and events[0].pulls_quotes
    assert "sequence gap" in events[0].detail
    alpha = TargetSet(
        "alpha", [target(Side.BUY, "1.99", "5"), target(Side.BUY, "2990", "1", symbol="ETH/USDT")]
    )
    beta = TargetSet("beta", [target(Side.BUY, "1.99", "5", venue="beta")])
    assert risk.check(alpha, context())[0].targets == []  # the whole venue by default
    assert len(risk.check(beta, context())[0].targets) == 1
    recovered = risk.on_book_health("alpha", "BERA/USDT", in_sync(clock.time()))
    assert [e.kind for e in recovered] == ["book_recovered"]
    assert len(risk.check(alpha, context())[0].targets) == 2


def test_symbol_mode_pulls_only_the_stale_books_symbol() -> None:
    risk = engine(stale_pulls="symbol", price_band_bps=None)
    risk.on_book_health("alpha", "BERA/USDT", BookHealth(SyncState.STALE))
    alpha = TargetSet(
        "alpha", [target(Side.BUY, "1.99", "5"), target(Side.BUY, "2990", "1", symbol="ETH/USDT")]
    )
    assert [t.symbol for t in risk.check(alpha, context())[0].targets] == ["ETH/USDT"]


def test_silent_book_is_caught_by_age_within_the_limit() -> None:
    clock = ManualClock()
    risk = engine(clock, max_book_age_s=0.5)
    books = {("alpha", "BERA/USDT"): in_sync(clock.time())}
    assert risk.poll_books(books) == []
    clock.advance(0.4)
    assert risk.poll_books(books) == []
    clock.advance(0.2)
    events = risk.poll_books(books)
    assert [e.kind for e in events] == ["stale_book"] and "0.60s" in events[0].detail
    # check() applies the same rule from its context
    passed, _ = risk.check(TargetSet("alpha", [target(Side.BUY, "1.99", "5")]), context(health=books))
    assert passed.targets == []


def test_config_reads_yaml_style_values_and_rejects_inverted_bounds() -> None:
    config = RiskConfig.model_validate(
        {
            "position_limits": {"BERA": {"min": 2000, "max": "14000.5"}},
            "orders": {"max_notional": "500"},
            "pnl": {"daily_loss": 250, "max_drawdown": "400"},
            "volatility": {"widen_above": 8, "stop_above": 20, "resume_below": 12},
        }
    )
    assert config.position_limits["BERA"].max == D("14000.5")
    assert config.volatility.resume_level == 12
    with pytest.raises(ValueError, match="min must not exceed max"):
        RiskConfig.model_validate({"position_limits": {"BERA": {"min": 10, "max": 5}}})
    with pytest.raises(ValueError, match="extra"):
        RiskConfig.model_validate({"pnl": {"daily_los": 1}})


def test_state_is_json_ready_for_status() -> None:
    risk = engine(pnl={"max_drawdown": "10"})
    risk.on_mark(5.0)
    risk.on_mark(-6.0)
    state = risk.state()
    assert state["paused"] is True and state["drawdown"] == 11.0 and "drawdown" in state["reason"]
