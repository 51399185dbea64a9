"""Inventory manager: coefficient (seed 004), inventory price methods, lean, limits, rebalancing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from strategies.config import InventoryConfig
from strategies.inventory import InventoryManager
from strategies.types import Fill, Side

D = Decimal


def manager(venues: tuple[str, ...] = ("alpha",), **overrides: Any) -> InventoryManager:
    fields: dict[str, Any] = {"target": "1000", "max_deviation": "500"}
    fields.update(overrides)
    return InventoryManager(InventoryConfig.model_validate(fields), "BERA", "USDT", venues)


_trade_ids = iter(range(1, 10**6))


def fill(side: Side, qty: str, price: str, fee: str = "0", fee_asset: str = "USDT", **kw: Any) -> Fill:
    fields: dict[str, Any] = {
        "venue": "alpha",
        "symbol": "BERA/USDT",
        "side": side,
        "price": D(price),
        "qty": D(qty),
        "fee": D(fee),
        "fee_asset": fee_asset,
        "trade_id": str(next(_trade_ids)),
        "client_order_id": "bera-tob1-1",
        "line_id": "tob1",
        "ts": 0.0,
    }
    fields.update(kw)
    return Fill(**fields)


@pytest.mark.parametrize(
    ("held", "expected"),
    [("1500", 0.5), ("500", -0.5), ("1000", 0.0), ("3000", 1.0), ("0", -1.0)],
)
def test_coefficient_follows_seed_004_with_target_as_denominator(held: str, expected: float) -> None:
    inv = manager()
    inv.on_balances("alpha", {"BERA": D(held)})
    assert inv.coefficient() == pytest.approx(expected)


def test_coefficient_with_max_deviation_as_denominator_is_clipped() -> None:
    inv = manager(max_deviation="250", denominator="max_deviation")
    inv.on_balances("alpha", {"BERA": D("1100")})
    assert inv.coefficient() == pytest.approx(0.4)
    inv.on_balances("alpha", {"BERA": D("2000")})
    assert inv.coefficient() == 1.0


def test_position_sums_venues_and_fills() -> None:
    inv = manager(venues=("alpha", "beta"))
    inv.on_balances("alpha", {"BERA": D("600"), "USDT": D("1000")})
    inv.on_balances("beta", {"BERA": D("400")})
    inv.on_fill(fill(Side.BUY, "100", "2.5", fee="0.25"))
    assert inv.position == D("1100")
    assert inv.holdings("USDT") == {"alpha": D("749.75"), "beta": D("0")}


def test_a_replayed_fill_is_counted_once() -> None:
    inv = manager()
    f = fill(Side.BUY, "10", "2.5")
    assert inv.on_fill(f) is True
    assert inv.on_fill(f) is False
    assert inv.position == D("10")


def test_a_balance_snapshot_that_includes_our_fill_changes_nothing() -> None:
    inv = manager(manual_price="2.0", price_method="accounting")
    inv.on_balances("alpha", {"BERA": D("1000")})
    inv.on_fill(fill(Side.BUY, "100", "3.0"))
    before = (inv.position, inv.avg_cost)
    inv.on_balances("alpha", {"BERA": D("1100")})
    assert (inv.position, inv.avg_cost) == before


def test_a_fill_reported_after_the_snapshot_that_includes_it_is_not_counted_twice() -> None:
    # the fill executes at t=10, the venue answers the balance request at t=11 (it holds the
    # fill), and the fill's report arrives after the balance response
    inv = manager(manual_price="2.0", price_method="accounting")
    inv.on_balances("alpha", {"BERA": D("1000"), "USDT": D("5000")}, as_of=5.0)
    inv.on_balances("alpha", {"BERA": D("1100"), "USDT": D("4700")}, as_of=11.0)
    inv.on_fill(fill(Side.BUY, "100", "3.0", ts=10.0))
    assert inv.position == D("1100")
    assert inv.holdings("USDT")["alpha"] == D("4700")
    # the cost basis has the fill at its price, not as a deposit at the opening price
    assert inv.avg_cost == pytest.approx((1000 * 2.0 + 100 * 3.0) / 1100)


def test_a_fill_that_lands_while_the_balance_request_is_in_flight_survives_the_snapshot() -> None:
    # the venue answers at t=11 (before the fill), the fill executes at t=12 and is reported
    # before the balance response arrives: the snapshot must not wipe it out
    inv = manager()
    inv.on_balances("alpha", {"BERA": D("1000"), "USDT": D("5000")}, as_of=5.0)
    inv.on_fill(fill(Side.SELL, "50", "2.0", ts=12.0))
    inv.on_balances("alpha", {"BERA": D("1000"), "USDT": D("5000")}, as_of=11.0)
    assert inv.position == D("950")
    assert inv.holdings("USDT")["alpha"] == D("5100")
    # the next snapshot includes it: still counted once
    inv.on_balances("alpha", {"BERA": D("950"), "USDT": D("5100")}, as_of=13.0)
    assert inv.position == D("950")


def test_positions_are_exact_for_every_interleaving_of_fills_and_a_snapshot() -> None:
    import itertools

    fills = [fill(Side.BUY, "10", "2.0", ts=1.0), fill(Side.SELL, "4", "2.0", ts=2.0),
             fill(Side.BUY, "7", "2.0", ts=4.0)]
    snapshot_ts = 3.0  # holds the first two fills: 1000 + 10 - 4
    snapshot = {"BERA": D("1006")}
    for order in itertools.permutations([*range(len(fills)), "snap"]):
        inv = manager()
        inv.on_balances("alpha", {"BERA": D("1000")}, as_of=0.0)
        for step in order:
            if step == "snap":
                inv.on_balances("alpha", snapshot, as_of=snapshot_ts)
            else:
                inv.on_fill(fills[int(step)])
        assert inv.position == D("1013"), order


def test_an_older_snapshot_arriving_late_is_ignored() -> None:
    inv = manager()
    inv.on_balances("alpha", {"BERA": D("1100")}, as_of=20.0)
    assert inv.on_balances("alpha", {"BERA": D("1000")}, as_of=10.0) is False
    assert inv.position == D("1100")


def test_carry_over_keeps_the_position_and_fills_since_the_last_snapshot() -> None:
    inv = manager()
    inv.on_balances("alpha", {"BERA": D("1000")}, as_of=5.0)
    f = fill(Side.BUY, "10", "2.5", ts=6.0)
    inv.on_fill(f)
    fresh = manager()
    fresh.carry_over(inv)
    assert fresh.position == D("1010")
    assert fresh.on_fill(f) is False
    fresh.on_balances("alpha", {"BERA": D("1000")}, as_of=5.5)  # before the fill: re-applied
    assert fresh.position == D("1010")


def test_accounting_price_is_weighted_average_cost_including_fees() -> None:
    inv = manager(price_method="accounting")
    inv.on_mark(2.0)
    inv.on_fill(fill(Side.BUY, "100", "2", fee="0.2", fee_asset="USDT"))  # cost 200.2 for 100
    assert inv.inventory_price() == pytest.approx(2.002)
    inv.on_fill(fill(Side.BUY, "100", "3", fee="0.1", fee_asset="BERA"))  # cost 300 for 99.9
    assert inv.inventory_price() == pytest.approx(500.2 / 199.9)
    avg = 500.2 / 199.9
    inv.on_fill(fill(Side.SELL, "50", "4", fee="0.2", fee_asset="USDT"))  # proceeds 199.8
    state = inv.state().base_state
    assert state.avg_cost == pytest.approx(avg)  # a sell does not move the average cost
    assert state.realised_pnl == pytest.approx(199.8 - 50 * avg)


def test_holdings_before_any_fill_open_at_the_manual_price_else_the_first_mark() -> None:
    inv = manager(price_method="accounting")
    inv.on_balances("alpha", {"BERA": D("1000")})
    assert inv.inventory_price() is None
    inv.on_mark(2.5)
    inv.on_fill(fill(Side.BUY, "1000", "3.5"))
    assert inv.inventory_price() == pytest.approx(3.0)  # (1000 * 2.5 + 1000 * 3.5) / 2000
    manual = manager(price_method="accounting", manual_price="2.0")
    manual.on_balances("alpha", {"BERA": D("1000")})
    manual.on_fill(fill(Side.BUY, "1000", "3.0"))
    assert manual.inventory_price() == pytest.approx(2.5)


def test_manual_and_mark_to_market_prices() -> None:
    inv = manager(price_method="manual", manual_price="2.75")
    inv.on_mark(3.0)
    assert inv.inventory_price() == 2.75
    mtm = manager(price_method="mark_to_market")
    assert mtm.inventory_price() is None
    mtm.on_mark(3.0)
    mtm.on_fill(fill(Side.BUY, "10", "2"))
    assert mtm.inventory_price() == 3.0


def test_long_inventory_leans_bids_wider_and_smaller_asks_tighter() -> None:
    inv = manager(skew=1.0, size_skew=0.5)
    inv.on_balances("alpha", {"BERA": D("1500")})  # c = +0.5
    skew = inv.skew()
    assert (skew.bid_spread, skew.ask_spread) == pytest.approx((1.5, 0.5))
    assert (skew.bid_size, skew.ask_size) == pytest.approx((0.75, 1.0))
    inv.on_balances("alpha", {"BERA": D("700")})  # c = -0.3
    skew = inv.skew()
    assert (skew.bid_spread, skew.ask_spread) == pytest.approx((0.7, 1.3))
    assert (skew.bid_size, skew.ask_size) == pytest.approx((1.0, 0.85))


def test_at_max_deviation_the_growing_side_stops() -> None:
    inv = manager()
    inv.on_balances("alpha", {"BERA": D("1499")})
    assert inv.skew().bid_allowed and inv.skew().ask_allowed
    inv.on_balances("alpha", {"BERA": D("1500")})
    assert not inv.skew().bid_allowed and inv.skew().ask_allowed
    inv.on_balances("alpha", {"BERA": D("500")})
    assert inv.skew().bid_allowed and not inv.skew().ask_allowed


def test_no_loss_rule_bounds_prices_around_the_inventory_price() -> None:
    inv = manager(price_method="manual", manual_price="2.0", no_loss_margin_bps=50)
    skew = inv.skew()
    assert skew.ask_floor == pytest.approx(1.99)
    assert skew.bid_cap == pytest.approx(2.01)
    # quotes in BTC: the USDT price converted through BTC/USDT
    inv.set_rate("BTC", 100_000.0)
    assert inv.skew("BTC").ask_floor == pytest.approx(1.99 / 100_000)
    assert manager().skew().ask_floor is None


def test_rebalancing_suggests_moving_from_the_fullest_to_the_emptiest_venue() -> None:
    inv = manager(venues=("alpha", "beta", "gamma"), target="12000", max_deviation="6000")
    inv.on_balances("alpha", {"BERA": D("7000"), "USDT": D("10000")})
    inv.on_balances("beta", {"BERA": D("1000"), "USDT": D("10000")})
    inv.on_balances("gamma", {"BERA": D("4000"), "USDT": D("10000")})
    suggestions = inv.rebalance_suggestions()
    assert len(suggestions) == 1
    move = suggestions[0]
    assert (move.asset, move.qty, move.from_venue, move.to_venue) == ("BERA", D("3000"), "alpha", "beta")


def test_configured_venue_targets_set_the_shares() -> None:
    inv = manager(
        venues=("alpha", "beta"),
        target="1000",
        venue_targets={"alpha": "800", "beta": "200"},
    )
    inv.on_balances("alpha", {"BERA": D("800")})
    inv.on_balances("beta", {"BERA": D("200")})
    assert inv.rebalance_suggestions() == []


def test_state_serialises_for_redis() -> None:
    inv = manager(venues=("alpha", "beta"), price_method="manual", manual_price="2.5")
    inv.on_balances("alpha", {"BERA": D("900"), "USDT": D("100")})
    inv.on_balances("beta", {"BERA": D("300")})
    state = inv.state()
    data = {asset: json.loads(text) for asset, text in state.to_redis().items()}
    assert data["BERA"]["position"] == "1200"
    assert data["BERA"]["per_venue"] == {"alpha": "900", "beta": "300"}
    assert data["BERA"]["coefficient"] == pytest.approx(0.2)
    assert data["BERA"]["price"] == 2.5
    assert data["USDT"] == {"position": "100", "per_venue": {"alpha": "100", "beta": "0"}}
    rebalance = {k: json.loads(v) for k, v in state.rebalance_to_redis().items()}
    assert rebalance["BERA"]["from"] == "alpha" and rebalance["BERA"]["to"] == "beta"
