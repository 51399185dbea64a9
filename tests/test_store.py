"""SQLite persistence: WAL, versioned migrations, order history, fills exactly once."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.store import SCHEMA_VERSION, Store
from strategies.types import Fill, Side, Trade


def _fill(trade_id: str, qty: str = "1.5") -> Fill:
    return Fill(
        venue="alpha",
        symbol="BERA/USDT",
        side=Side.BUY,
        price=Decimal("2.0345"),
        qty=Decimal(qty),
        fee=Decimal("0.0015"),
        fee_asset="BERA",
        trade_id=trade_id,
        client_order_id="mm-tob0b-1",
        line_id="tob",
        ts=1_700_000_000.5,
    )


async def test_new_database_is_wal_and_at_the_latest_schema(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "state" / "stackmm.sqlite")
    try:
        assert await store.journal_mode() == "wal"
        assert await store.schema_version() == SCHEMA_VERSION
    finally:
        await store.close()


async def test_old_database_is_migrated_forward_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    store = await Store.open(path)
    await store.record_fill(_fill("1"))
    await store.close()
    # Pretend it was written by a release that only had the first migration.
    with sqlite3.connect(path) as raw:
        raw.execute("DROP TABLE market_trades")
        raw.execute("PRAGMA user_version = 1")
    store = await Store.open(path)
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        assert [f.trade_id for f in await store.fills()] == ["1"]
        assert (
            await store.append_market_trades([Trade("alpha", "BERA/USDT", 2.0, 1.0, Side.BUY, 10.0, 7)]) == 1
        )
    finally:
        await store.close()


async def test_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        await Store.open(path)


async def test_each_fill_is_recorded_once_with_its_fee(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.sqlite")
    try:
        results = await asyncio.gather(*(store.record_fill(_fill("42")) for _ in range(5)))
        assert sorted(results) == [False, False, False, False, True]
        assert await store.record_fill(_fill("43", qty="2")) is True
        fills = await store.fills(venue="alpha", symbol="BERA/USDT")
        assert [(f.trade_id, f.qty, f.fee, f.fee_asset) for f in fills] == [
            ("42", Decimal("1.5"), Decimal("0.0015"), "BERA"),
            ("43", Decimal("2"), Decimal("0.0015"), "BERA"),
        ]
        assert await store.last_fill_ts("alpha", "BERA/USDT") == pytest.approx(1_700_000_000.5)
        assert await store.last_fill_ts("alpha", "ETH/USDT") is None
    finally:
        await store.close()


async def test_order_state_changes_are_kept_in_order_and_survive_reopening(tmp_path: Path) -> None:
    from connectors.execution.orders import OrderRecord, OrderState

    path = tmp_path / "s.sqlite"
    store = await Store.open(path)
    rec = OrderRecord("mm-tob0b-1", "alpha", "BERA/USDT", Side.SELL, Decimal("2.01"), Decimal("5"), "tob", 0)
    await store.record_order_event(rec)
    rec.transition(OrderState.UNKNOWN, 1.0, "timeout")
    await store.record_order_event(rec)
    rec.venue_order_id = "77"
    rec.transition(OrderState.OPEN, 2.0)
    await store.record_order_event(rec)
    assert [o.client_order_id for o in await store.live_orders("alpha")] == ["mm-tob0b-1"]
    rec.transition(OrderState.PENDING_CANCEL, 3.0)
    await store.record_order_event(rec)
    rec.transition(OrderState.CANCELLED, 4.0)
    await store.record_order_event(rec)
    await store.close()

    store = await Store.open(path)
    try:
        assert await store.order_history("alpha", "mm-tob0b-1") == [
            OrderState.PENDING_NEW,
            OrderState.UNKNOWN,
            OrderState.OPEN,
            OrderState.PENDING_CANCEL,
            OrderState.CANCELLED,
        ]
        saved = await store.order("alpha", "mm-tob0b-1")
        assert saved is not None
        assert (saved.state, saved.price, saved.size, saved.venue_order_id) == (
            OrderState.CANCELLED,
            Decimal("2.01"),
            Decimal("5"),
            "77",
        )
        assert (await store.order_by_venue_id("alpha", "77")) is not None
        assert await store.live_orders("alpha") == []
    finally:
        await store.close()


async def test_balances_and_operator_actions_are_recorded(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.sqlite")
    try:
        await store.record_balance_snapshot(
            "alpha", {"USDT": {"free": Decimal("10.5"), "used": Decimal("1")}}
        )
        await store.audit("operator", "pause", {"venue": "alpha"})
        [(_, snapshot)] = await store.balance_snapshots("alpha")
        assert snapshot == {"USDT": {"free": "10.5", "used": "1"}}
        [(_, actor, action, detail)] = await store.audit_log()
        assert (actor, action, detail) == ("operator", "pause", '{"venue": "alpha"}')
    finally:
        await store.close()


async def test_market_trades_are_kept_for_the_retention_window_only(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.sqlite", market_trade_retention_s=60.0)
    try:
        old = [Trade("alpha", "BERA/USDT", 2.0, 1.0, Side.BUY, 1000.0 + i, i) for i in range(10)]
        await store.append_market_trades(old)
        new = [Trade("alpha", "BERA/USDT", 2.1, 2.0, Side.SELL, 1100.0 + i, 100 + i) for i in range(5)]
        await store.append_market_trades(new)
        kept = await store.recent_market_trades("alpha", "BERA/USDT", since_ts=0.0)
        assert [t.trade_id for t in kept] == [100, 101, 102, 103, 104]
        assert kept[0].taker_side is Side.SELL and kept[0].price == 2.1
        assert await store.recent_market_trades("beta", "BERA/USDT", since_ts=0.0) == []
    finally:
        await store.close()
