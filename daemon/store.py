"""SQLite persistence: orders and their state changes, fills with fees, balance snapshots,
the operator audit log and a bounded window of market trades.

One file in the state directory, WAL mode (readers never block the writer), schema
versioned with ``PRAGMA user_version`` and forward-only migrations. Every write that the
rest of the system relies on (an order before it is sent, a fill before the inventory
manager hears of it) is committed before the call returns, so a crash loses nothing that
was acknowledged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite
import structlog

from connectors.execution.orders import OrderRecord, OrderState
from strategies.types import Fill, Side, Trade

log = structlog.get_logger(__name__)

# Each entry moves the schema from version i to i+1. Never edit a released entry: append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE orders (
        venue TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        price TEXT NOT NULL,
        size TEXT NOT NULL,
        line_id TEXT NOT NULL,
        level INTEGER NOT NULL,
        state TEXT NOT NULL,
        filled TEXT NOT NULL,
        venue_order_id TEXT,
        reason TEXT NOT NULL DEFAULT '',
        created_ts REAL NOT NULL,
        updated_ts REAL NOT NULL,
        PRIMARY KEY (venue, client_order_id)
    );
    CREATE INDEX orders_live ON orders (venue, state);
    CREATE INDEX orders_venue_id ON orders (venue, venue_order_id);
    CREATE TABLE order_events (
        id INTEGER PRIMARY KEY,
        venue TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        state TEXT NOT NULL,
        filled TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        ts REAL NOT NULL
    );
    CREATE INDEX order_events_order ON order_events (venue, client_order_id);
    CREATE TABLE fills (
        venue TEXT NOT NULL,
        symbol TEXT NOT NULL,
        trade_id TEXT NOT NULL,
        side TEXT NOT NULL,
        price TEXT NOT NULL,
        qty TEXT NOT NULL,
        fee TEXT NOT NULL,
        fee_asset TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        line_id TEXT NOT NULL,
        ts REAL NOT NULL,
        is_maker INTEGER NOT NULL,
        PRIMARY KEY (venue, symbol, trade_id)
    );
    CREATE INDEX fills_ts ON fills (venue, symbol, ts);
    CREATE TABLE balance_snapshots (
        id INTEGER PRIMARY KEY,
        venue TEXT NOT NULL,
        ts REAL NOT NULL,
        balances TEXT NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE market_trades (
        venue TEXT NOT NULL,
        symbol TEXT NOT NULL,
        trade_id INTEGER NOT NULL,
        price REAL NOT NULL,
        qty REAL NOT NULL,
        taker_side TEXT NOT NULL,
        ts REAL NOT NULL
    );
    CREATE INDEX market_trades_ts ON market_trades (venue, symbol, ts);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _order_from_row(row: aiosqlite.Row) -> OrderRecord:
    return OrderRecord(
        client_order_id=row["client_order_id"],
        venue=row["venue"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        price=Decimal(row["price"]),
        size=Decimal(row["size"]),
        line_id=row["line_id"],
        level=row["level"],
        state=OrderState(row["state"]),
        filled=Decimal(row["filled"]),
        venue_order_id=row["venue_order_id"],
        reason=row["reason"],
        created_ts=row["created_ts"],
        updated_ts=row["updated_ts"],
    )


def _fill_from_row(row: aiosqlite.Row) -> Fill:
    return Fill(
        venue=row["venue"],
        symbol=row["symbol"],
        side=Side(row["side"]),
        price=Decimal(row["price"]),
        qty=Decimal(row["qty"]),
        fee=Decimal(row["fee"]),
        fee_asset=row["fee_asset"],
        trade_id=row["trade_id"],
        client_order_id=row["client_order_id"],
        line_id=row["line_id"],
        ts=row["ts"],
        is_maker=bool(row["is_maker"]),
    )


_TERMINAL_STATES = tuple(s.value for s in OrderState if s.is_terminal)


class Store:
    """The instance's SQLite database. Open with ``await Store.open(path)``."""

    def __init__(self, db: aiosqlite.Connection, path: Path, market_trade_retention_s: float) -> None:
        self._db = db
        self.path = path
        self.market_trade_retention_s = market_trade_retention_s

    @classmethod
    async def open(cls, path: str | Path, *, market_trade_retention_s: float = 86_400.0) -> Store:
        """Open (creating if needed) and migrate the database at ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a process crash (SIGKILL) in WAL mode; only an OS
            # crash could lose the last transactions, and FULL would fsync on every fill.
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            store = cls(db, path, market_trade_retention_s)
            await store._migrate()
        except BaseException:
            await db.close()  # its worker thread must not outlive the caller's loop
            raise
        return store

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} has schema version {version}, newer than this stackmm ({SCHEMA_VERSION}); "
                "upgrade stackmm or point it at another state directory"
            )
        for target in range(version, SCHEMA_VERSION):
            await self._db.executescript(
                f"BEGIN; {MIGRATIONS[target]} PRAGMA user_version = {target + 1}; COMMIT;"
            )
            log.info("store_migrated", path=str(self.path), version=target + 1)

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def journal_mode(self) -> str:
        async with self._db.execute("PRAGMA journal_mode") as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else ""

    async def close(self) -> None:
        await self._db.close()

    # orders -------------------------------------------------------------------------

    async def record_order_event(self, order: OrderRecord) -> None:
        await self._db.execute(
            """
            INSERT INTO orders (venue, client_order_id, symbol, side, price, size, line_id, level, state,
                                filled, venue_order_id, reason, created_ts, updated_ts)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (venue, client_order_id) DO UPDATE SET
                state = excluded.state, filled = excluded.filled,
                venue_order_id = COALESCE(excluded.venue_order_id, orders.venue_order_id),
                reason = excluded.reason, updated_ts = excluded.updated_ts
            """,
            (
                order.venue,
                order.client_order_id,
                order.symbol,
                order.side.value,
                str(order.price),
                str(order.size),
                order.line_id,
                order.level,
                order.state.value,
                str(order.filled),
                order.venue_order_id,
                order.reason,
                order.created_ts,
                order.updated_ts,
            ),
        )
        await self._db.execute(
            "INSERT INTO order_events (venue, client_order_id, state, filled, reason, ts) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                order.venue,
                order.client_order_id,
                order.state.value,
                str(order.filled),
                order.reason,
                order.updated_ts,
            ),
        )
        await self._db.commit()

    async def order(self, venue: str, client_order_id: str) -> OrderRecord | None:
        async with self._db.execute(
            "SELECT * FROM orders WHERE venue = ? AND client_order_id = ?", (venue, client_order_id)
        ) as cur:
            row = await cur.fetchone()
        return _order_from_row(row) if row else None

    async def order_by_venue_id(self, venue: str, venue_order_id: str) -> OrderRecord | None:
        async with self._db.execute(
            "SELECT * FROM orders WHERE venue = ? AND venue_order_id = ?", (venue, venue_order_id)
        ) as cur:
            row = await cur.fetchone()
        return _order_from_row(row) if row else None

    async def live_orders(self, venue: str) -> list[OrderRecord]:
        placeholders = ",".join("?" * len(_TERMINAL_STATES))
        async with self._db.execute(
            f"SELECT * FROM orders WHERE venue = ? AND state NOT IN ({placeholders}) ORDER BY created_ts",
            (venue, *_TERMINAL_STATES),
        ) as cur:
            rows = await cur.fetchall()
        return [_order_from_row(r) for r in rows]

    async def orders(self, venue: str | None = None) -> list[OrderRecord]:
        """Every recorded order (last state), optionally of one venue."""
        sql, args = "SELECT * FROM orders", ()
        if venue is not None:
            sql, args = sql + " WHERE venue = ?", (venue,)  # type: ignore[assignment]
        async with self._db.execute(sql + " ORDER BY created_ts", args) as cur:
            rows = await cur.fetchall()
        return [_order_from_row(r) for r in rows]

    async def order_history(self, venue: str, client_order_id: str) -> list[OrderState]:
        async with self._db.execute(
            "SELECT state FROM order_events WHERE venue = ? AND client_order_id = ? ORDER BY id",
            (venue, client_order_id),
        ) as cur:
            rows = await cur.fetchall()
        return [OrderState(r["state"]) for r in rows]

    # fills ----------------------------------------------------------------------------

    async def record_fill(self, fill: Fill) -> bool:
        cur = await self._db.execute(
            """
            INSERT OR IGNORE INTO fills (venue, symbol, trade_id, side, price, qty, fee, fee_asset,
                                         client_order_id, line_id, ts, is_maker)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                fill.venue,
                fill.symbol,
                str(fill.trade_id),
                fill.side.value,
                str(fill.price),
                str(fill.qty),
                str(fill.fee),
                fill.fee_asset,
                fill.client_order_id,
                fill.line_id,
                fill.ts,
                int(fill.is_maker),
            ),
        )
        inserted = cur.rowcount == 1
        await cur.close()
        await self._db.commit()
        return inserted

    async def fills(
        self, venue: str | None = None, symbol: str | None = None, since_ts: float | None = None
    ) -> list[Fill]:
        clauses: list[str] = []
        args: list[Any] = []
        for column, value, op in (("venue", venue, "="), ("symbol", symbol, "="), ("ts", since_ts, ">=")):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        async with self._db.execute(f"SELECT * FROM fills{where} ORDER BY ts, trade_id", args) as cur:
            rows = await cur.fetchall()
        return [_fill_from_row(r) for r in rows]

    async def last_fill_ts(self, venue: str, symbol: str) -> float | None:
        async with self._db.execute(
            "SELECT MAX(ts) FROM fills WHERE venue = ? AND symbol = ?", (venue, symbol)
        ) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    # balances and audit ----------------------------------------------------------------

    async def record_balance_snapshot(
        self,
        venue: str,
        balances: Mapping[str, Mapping[str, Decimal | float | str]],
        ts: float | None = None,
    ) -> None:
        """``balances``: asset -> {"free": ..., "locked"/"used": ..., "total": ...}."""
        payload = {asset: {k: str(v) for k, v in parts.items()} for asset, parts in balances.items()}
        await self._db.execute(
            "INSERT INTO balance_snapshots (venue, ts, balances) VALUES (?, ?, ?)",
            (venue, time.time() if ts is None else ts, json.dumps(payload, sort_keys=True)),
        )
        await self._db.commit()

    async def balance_snapshots(self, venue: str) -> list[tuple[float, dict[str, dict[str, str]]]]:
        async with self._db.execute(
            "SELECT ts, balances FROM balance_snapshots WHERE venue = ? ORDER BY id", (venue,)
        ) as cur:
            rows = await cur.fetchall()
        return [(float(r["ts"]), json.loads(r["balances"])) for r in rows]

    async def audit(
        self, actor: str, action: str, detail: Mapping[str, Any] | str, ts: float | None = None
    ) -> None:
        """Record an operator action (pause, resume, cancel-all, config reload...)."""
        text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True, default=str)
        await self._db.execute(
            "INSERT INTO audit (ts, actor, action, detail) VALUES (?, ?, ?, ?)",
            (time.time() if ts is None else ts, actor, action, text),
        )
        await self._db.commit()

    async def audit_log(self, limit: int = 100) -> list[tuple[float, str, str, str]]:
        async with self._db.execute(
            "SELECT ts, actor, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
        ) as cur:
            rows = await cur.fetchall()
        return [(float(r["ts"]), r["actor"], r["action"], r["detail"]) for r in rows]

    # market trades (warm start of volume statistics) ----------------------------------

    async def append_market_trades(self, trades: Iterable[Trade]) -> int:
        """Append public trades and drop those older than the retention window (relative to
        the newest trade written). Returns how many were written."""
        rows = [(t.venue, t.symbol, t.trade_id, t.price, t.qty, t.taker_side.value, t.ts) for t in trades]
        if not rows:
            return 0
        await self._db.executemany(
            "INSERT INTO market_trades (venue, symbol, trade_id, price, qty, taker_side, ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        horizon = max(r[6] for r in rows) - self.market_trade_retention_s
        await self._db.execute("DELETE FROM market_trades WHERE ts < ?", (horizon,))
        await self._db.commit()
        return len(rows)

    async def recent_market_trades(self, venue: str, symbol: str, since_ts: float) -> list[Trade]:
        async with self._db.execute(
            "SELECT * FROM market_trades WHERE venue = ? AND symbol = ? AND ts >= ? ORDER BY ts, rowid",
            (venue, symbol, since_ts),
        ) as cur:
            rows = await cur.fetchall()
        return [
            Trade(
                venue=r["venue"],
                symbol=r["symbol"],
                price=r["price"],
                qty=r["qty"],
                taker_side=Side(r["taker_side"]),
                ts=r["ts"],
                trade_id=r["trade_id"],
            )
            for r in rows
        ]
