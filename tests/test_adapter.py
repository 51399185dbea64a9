"""The ccxt adapter against the paper venue (real HTTP, unmodified ccxt), the weight limiter
and credential lookup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.execution.adapter import VenueAdapter
from connectors.execution.credentials import Credentials, MissingCredentials, load_credentials
from connectors.execution.errors import OrderNotFound, OutcomeUnknown, RateLimited, Rejected, RejectReason
from connectors.execution.rate_limit import WeightLimiter
from connectors.paper import PaperVenueHandle, ccxt_config
from strategies.clock import ManualClock
from strategies.types import Side

SYMBOL = "BERA/USDT"


@pytest.fixture
async def adapter(paper_venue: PaperVenueHandle) -> AsyncIterator[VenueAdapter]:
    ad = VenueAdapter.from_config("alpha", "binance", ccxt_config(paper_venue), timeout_ms=1500)
    await ad.load_markets()
    yield ad
    await ad.close()


def _passive_bid(venue: PaperVenueHandle, ticks_below: int = 20) -> Decimal:
    bids, _, _ = venue.engine.depth(SYMBOL, 1)
    tick = venue.engine.spec(SYMBOL).tick
    return bids[0][0] - tick * ticks_below


async def test_market_rules_come_from_the_venue_filters(
    adapter: VenueAdapter, paper_venue: PaperVenueHandle
) -> None:
    spec = paper_venue.engine.spec(SYMBOL)
    rules = adapter.rules[SYMBOL]
    assert (rules.tick, rules.step, rules.min_qty, rules.min_notional) == (
        spec.tick,
        spec.step,
        spec.min_qty,
        spec.min_notional,
    )


async def test_post_only_order_rests_with_the_exact_price_size_and_client_id(
    adapter: VenueAdapter, paper_venue: PaperVenueHandle
) -> None:
    price = _passive_bid(paper_venue)
    placed = await adapter.create_post_only(SYMBOL, Side.BUY, price, Decimal("12.34"), "mmtest-tob0b-1")
    [resting] = paper_venue.engine.open_orders(paper_venue.account, SYMBOL)
    assert resting.client_order_id == "mmtest-tob0b-1"
    assert resting.type.value == "LIMIT_MAKER"
    assert (resting.price, resting.qty) == (price, Decimal("12.34"))
    assert placed.state.value == "open" and placed.venue_order_id == str(resting.order_id)

    found = await adapter.fetch_order(SYMBOL, "mmtest-tob0b-1")
    assert found.client_order_id == "mmtest-tob0b-1" and found.price == price
    cancelled = await adapter.cancel(SYMBOL, "mmtest-tob0b-1")
    assert cancelled.state.value == "cancelled"
    assert cancelled.client_order_id == "mmtest-tob0b-1"
    assert paper_venue.engine.open_orders(paper_venue.account, SYMBOL) == []


async def test_venue_refusals_map_to_typed_outcomes(
    adapter: VenueAdapter, paper_venue: PaperVenueHandle
) -> None:
    _, asks, _ = paper_venue.engine.depth(SYMBOL, 1)
    with pytest.raises(Rejected) as would_take:
        await adapter.create_post_only(SYMBOL, Side.BUY, asks[0][0], Decimal("10"), "mmtest-tob0b-2")
    assert would_take.value.reason is RejectReason.WOULD_TAKE
    with pytest.raises(Rejected) as broke:
        await adapter.create_post_only(SYMBOL, Side.SELL, asks[0][0] * 10, Decimal("50000"), "mmtest-tob0a-3")
    assert broke.value.reason is RejectReason.INSUFFICIENT_BALANCE
    with pytest.raises(OrderNotFound):
        await adapter.fetch_order(SYMBOL, "mmtest-never-1")
    with pytest.raises(OrderNotFound):
        await adapter.cancel(SYMBOL, "mmtest-never-1")
    assert paper_venue.engine.open_orders(paper_venue.account, SYMBOL) == []


async def test_order_off_the_grid_or_below_min_notional_is_never_sent(
    adapter: VenueAdapter, paper_venue: PaperVenueHandle
) -> None:
    sent_before = adapter.stats.requests
    price = _passive_bid(paper_venue)
    with pytest.raises(ValueError, match="not on tick"):
        await adapter.create_post_only(
            SYMBOL, Side.BUY, price + Decimal("0.00001"), Decimal("10"), "mmtest-x-1"
        )
    with pytest.raises(ValueError, match="notional"):
        await adapter.create_post_only(SYMBOL, Side.BUY, price, Decimal("0.01"), "mmtest-x-2")
    assert adapter.stats.requests == sent_before


async def test_429_pauses_the_account_for_retry_after(
    adapter: VenueAdapter, paper_venue: PaperVenueHandle
) -> None:
    paper_venue.faults.force_429(1.2)
    with pytest.raises(RateLimited) as limited:
        await adapter.fetch_open_orders(SYMBOL)
    assert limited.value.retry_after_s >= 1.0  # from the venue's Retry-After header
    assert adapter.limiter.paused_for > 0.8
    assert adapter.limiter.stats.back_offs == 1
    # The next request waits out the pause instead of hammering the venue, then succeeds.
    assert await adapter.fetch_open_orders(SYMBOL) == []
    assert adapter.limiter.stats.waits >= 1


async def test_5xx_and_timeouts_are_unknown_outcomes_not_rejections(
    adapter: VenueAdapter, paper_venue: PaperVenueHandle
) -> None:
    faults = paper_venue.faults
    faults.rest_fail_rate, faults.rest_fail_after_share = 1.0, 1.0
    faults.rest_fail_mode = "5xx"
    price = _passive_bid(paper_venue)
    with pytest.raises(OutcomeUnknown):
        await adapter.create_post_only(SYMBOL, Side.BUY, price, Decimal("10"), "mmtest-tob0b-9")
    faults.rest_fail_mode, faults.timeout_hold_s = "timeout", 3.0
    adapter.exchange.timeout = 300
    with pytest.raises(OutcomeUnknown):
        await adapter.create_post_only(
            SYMBOL, Side.BUY, price - Decimal("0.001"), Decimal("10"), "mmtest-tob1b-9"
        )
    faults.rest_fail_rate = 0.0
    adapter.exchange.timeout = 1500
    # Both failed after the engine acted: the orders exist although the client never heard.
    assert {o.client_order_id for o in paper_venue.engine.open_orders(paper_venue.account, SYMBOL)} == {
        "mmtest-tob0b-9",
        "mmtest-tob1b-9",
    }
    assert (await adapter.fetch_order(SYMBOL, "mmtest-tob1b-9")).state.value == "open"


# the limiter alone, on a manual clock ---------------------------------------------------


def _limiter(weight_per_minute: int, **kw: float) -> tuple[WeightLimiter, ManualClock, list[float]]:
    clock = ManualClock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    return WeightLimiter(weight_per_minute, clock=clock, sleep=sleep, **kw), clock, slept


async def test_limiter_keeps_the_sustained_rate_under_the_venue_limit() -> None:
    limiter, clock, _ = _limiter(1200, safety=0.5, burst_s=1.0)  # 10 weight/s, bucket of 10
    start = clock.monotonic()
    for _ in range(100):
        await limiter.acquire(1)
    elapsed = clock.monotonic() - start
    # 100 weight at 10/s with a burst of 10: at least 9 s, i.e. never above 50% of 1200/min.
    assert elapsed == pytest.approx(9.0, abs=0.01)
    assert 100 / elapsed * 60 <= 1200 * 0.5 * 1.12


async def test_limiter_back_off_holds_every_request_until_retry_after() -> None:
    limiter, clock, slept = _limiter(6000)
    limiter.back_off(2.5)
    await limiter.acquire(1)
    assert clock.monotonic() >= 2.5
    assert sum(slept) >= 2.5


async def test_limiter_believes_the_venue_about_weight_already_used() -> None:
    limiter, clock, _ = _limiter(600, safety=1.0, burst_s=60.0)  # a full minute of burst
    limiter.observe_used_weight(600)  # the venue says the minute is spent
    assert limiter.wait_needed(1) > 0
    await limiter.acquire(1)
    assert clock.monotonic() >= 0.1


# credentials --------------------------------------------------------------------------


def test_credentials_come_from_the_environment_first() -> None:
    env = {"STACKMM_ALPHA_API_KEY": "k1", "STACKMM_ALPHA_API_SECRET": "s1"}
    creds = load_credentials("alpha", env)
    assert creds == Credentials("k1", "s1")
    assert "s1" not in repr(creds)


def test_credentials_come_from_systemd_credential_files(tmp_path: Path) -> None:
    (tmp_path / "binance_main_api_key").write_text("k2\n")
    (tmp_path / "binance_main_api_secret").write_text("s2\n")
    creds = load_credentials("binance-main", {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert (creds.api_key, creds.secret) == ("k2", "s2")
    assert creds.ccxt_fields() == {"apiKey": "k2", "secret": "s2"}


def test_missing_credentials_say_where_they_were_looked_for() -> None:
    with pytest.raises(MissingCredentials, match="STACKMM_GAMMA_API_KEY"):
        load_credentials("gamma", {})
