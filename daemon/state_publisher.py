"""Publish the daemon's trading state to Redis: health, open orders, lines, inventory,
coefficients, PnL and risk events, under the keys of ``daemon/redis_keys.py``.

Publishing is coalesced: callers ``mark_dirty()`` on every change and the publisher writes
at most once per ``interval_s`` (and at least once a second, as a heartbeat), in one
pipelined transaction, so a reader never sees half an update. Redis going away is logged
once and the next publish after it returns rewrites everything.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog

from daemon.control import REDIS_DOWN
from daemon.redis_keys import INSTANCES, RedisKeys
from strategies.types import Fill, Side

log = structlog.get_logger(__name__)

RISK_EVENTS_MAXLEN = 1000
HEARTBEAT_S = 1.0


def dumps(value: Any) -> str:
    """JSON for a Redis field; Decimals as strings (exact), floats as numbers."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value"):  # enums
        return value.value
    raise TypeError(f"cannot serialise {type(value).__name__}")


@dataclass(slots=True)
class FeedHealth:
    """One book's health as status shows it."""

    state: str
    age_s: float | None
    resync_count: int = 0
    reason: str = ""


@dataclass(slots=True)
class StateSnapshot:
    """Everything published in one go. Built by the daemon from its parts."""

    status: str  # starting / ready / paused / unhealthy / stopping
    paused: bool = False
    warnings: list[str] = field(default_factory=list)
    feeds: dict[str, FeedHealth] = field(default_factory=dict)  # "venue:symbol" -> health
    tasks: dict[str, str] = field(default_factory=dict)  # supervised task -> state
    orders: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # venue -> coid -> order
    lines: dict[str, dict[str, Any]] = field(default_factory=dict)  # line id -> state
    # values already serialised (the strategy's ``to_redis``) are written as they are
    inventory: dict[str, Any] = field(default_factory=dict)  # asset -> state (dict or JSON text)
    coefficients: dict[str, float | str] = field(default_factory=dict)
    pnl: dict[str, Any] = field(default_factory=dict)
    rebalance: dict[str, Any] = field(default_factory=dict)  # asset -> suggestion (dict or JSON text)
    risk: dict[str, Any] = field(default_factory=dict)  # the risk engine's state()
    config_path: str = ""


class PnlTracker:
    """Fills and mark-to-market PnL since the daemon started, in the primary quote asset.

    PnL = Σ cash flow per quote asset × its rate − fees + base position × mark, where the rate
    of the primary quote is 1 and other quotes (BTC in BERA/BTC) are valued at ``on_rate``.
    Fees charged in the base asset are valued at the fill price. Exact decimals in, floats
    out (it is a report, not an order).
    """

    def __init__(self, primary_quote: str = "USDT") -> None:
        self.primary_quote = primary_quote
        self.fills = 0
        self.fills_by_venue: dict[str, int] = {}
        self.volume: dict[str, Decimal] = {}  # quote asset -> traded notional
        self.fees: dict[str, Decimal] = {}  # quote asset -> fees
        self.cash: dict[str, Decimal] = {}  # quote asset -> net cash flow
        self.position = Decimal(0)  # base asset, net
        self.mark: float | None = None
        self.rates: dict[str, float] = {primary_quote: 1.0}
        self.started_ts = time.time()

    def on_fill(self, fill: Fill) -> None:
        base, _, quote = fill.symbol.partition("/")
        notional = fill.price * fill.qty
        self.fills += 1
        self.fills_by_venue[fill.venue] = self.fills_by_venue.get(fill.venue, 0) + 1
        self.volume[quote] = self.volume.get(quote, Decimal(0)) + notional
        self.position += fill.qty if fill.side is Side.BUY else -fill.qty
        flow = -notional if fill.side is Side.BUY else notional
        self.cash[quote] = self.cash.get(quote, Decimal(0)) + flow
        fee = fill.fee * fill.price if fill.fee_asset == base else fill.fee
        fee_asset = quote if fill.fee_asset == base else fill.fee_asset
        self.fees[fee_asset] = self.fees.get(fee_asset, Decimal(0)) + fee

    def on_mark(self, price: float) -> None:
        """Price of the base asset in the primary quote."""
        self.mark = price

    def on_rate(self, quote: str, price_in_primary: float) -> None:
        """Value of one unit of another quote asset in the primary quote."""
        self.rates[quote] = price_in_primary

    def _in_primary(self, amounts: dict[str, Decimal]) -> float | None:
        total = 0.0
        for asset, amount in amounts.items():
            if amount == 0:
                continue
            rate = self.rates.get(asset)
            if rate is None:
                return None
            total += float(amount) * rate
        return total

    def volume_quote(self) -> float | None:
        return self._in_primary(self.volume)

    def fees_quote(self) -> float | None:
        return self._in_primary(self.fees)

    def pnl_quote(self) -> float | None:
        """None until every asset involved has a price."""
        cash, fees = self._in_primary(self.cash), self._in_primary(self.fees)
        if cash is None or fees is None:
            return None
        if self.position and self.mark is None:
            return None
        return cash - fees + (float(self.position) * self.mark if self.mark is not None else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.started_ts,
            "quote": self.primary_quote,
            "fills": self.fills,
            "fills_by_venue": dict(self.fills_by_venue),
            "volume_quote": self.volume_quote(),
            "fees_quote": self.fees_quote(),
            "position": float(self.position),
            "cash": {asset: str(amount) for asset, amount in self.cash.items()},
            "mark": self.mark,
            "pnl_quote": self.pnl_quote(),
        }


class StatePublisher:
    """Writes ``StateSnapshot``s to Redis, coalesced."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: RedisKeys,
        snapshot: Callable[[], StateSnapshot],
        interval_s: float = 0.25,
    ) -> None:
        self._client = client
        self._keys = keys
        self._snapshot = snapshot
        self._interval_s = interval_s
        self._dirty = asyncio.Event()
        self._published_lines: set[str] = set()
        self._published_venues: set[str] = set()
        self._pending_risk: list[dict[str, Any]] = []
        self._redis_down = False
        self.publishes = 0
        self.published = asyncio.Event()  # set after each successful publish (tests await it)
        self._started = time.time()

    def mark_dirty(self) -> None:
        self._dirty.set()

    def add_risk_event(self, event: dict[str, Any]) -> None:
        """Queue a risk limit event for the risk-events stream (written with the next publish)."""
        self._pending_risk.append(event)
        self._dirty.set()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._dirty.wait(), timeout=HEARTBEAT_S)
            except TimeoutError:
                pass  # heartbeat: publish anyway so `status` sees we are alive
            self._dirty.clear()
            await self.publish()
            await asyncio.sleep(self._interval_s)  # coalescing window, not synchronisation

    async def publish(self) -> bool:
        """Write the current snapshot now; False if Redis is unavailable."""
        snap = self._snapshot()
        try:
            await self._write(snap)
        except REDIS_DOWN as exc:
            if not self._redis_down:
                log.warning("state_publish_redis_unavailable", error=str(exc))
                self._redis_down = True
                # everything is rewritten on return; forget what we believed was there
                self._published_lines.clear()
                self._published_venues.clear()
            return False
        if self._redis_down:
            log.info("state_publish_redis_back")
            self._redis_down = False
        self.publishes += 1
        self.published.set()
        self.published = asyncio.Event()
        return True

    async def _write(self, snap: StateSnapshot) -> None:
        keys = self._keys
        pipe = self._client.pipeline(transaction=True)
        pipe.sadd(INSTANCES, keys.instance)
        now = time.time()
        pipe.delete(keys.health)
        pipe.hset(keys.health, mapping=_mapping({
            "status": snap.status,
            "paused": "1" if snap.paused else "0",
            "heartbeat": f"{now:.3f}",
            "started": f"{self._started:.3f}",
            "pid": str(os.getpid()),
            "host": socket.gethostname(),
            "config": snap.config_path,
            "warnings": dumps(snap.warnings),
            "feeds": dumps({k: vars_of(v) for k, v in snap.feeds.items()}),
            "tasks": dumps(snap.tasks),
            "risk": dumps(snap.risk),
        }))
        venues = set(snap.orders) | self._published_venues
        for venue in venues:
            pipe.delete(keys.orders(venue))
            orders = snap.orders.get(venue) or {}
            if orders:
                by_id = {coid: dumps(o) for coid, o in orders.items()}
                pipe.hset(keys.orders(venue), mapping=_mapping(by_id))
        self._published_venues = set(snap.orders)
        for line_id in self._published_lines - set(snap.lines):
            pipe.delete(keys.line(line_id))
        pipe.delete(keys.lines)
        if snap.lines:
            pipe.sadd(keys.lines, *snap.lines)
        for line_id, state in snap.lines.items():
            pipe.delete(keys.line(line_id))
            pipe.hset(keys.line(line_id), mapping=_mapping(_flat(state) or {"-": ""}))
        self._published_lines = set(snap.lines)
        for key, data in (
            (keys.inventory, _flat(snap.inventory)),
            (keys.coefficients, _flat(snap.coefficients)),
            (keys.pnl, _flat(snap.pnl)),
            (keys.rebalance, _flat(snap.rebalance)),
        ):
            pipe.delete(key)
            if data:
                pipe.hset(key, mapping=_mapping(data))
        risk, self._pending_risk = self._pending_risk, []
        for event in risk:
            pipe.xadd(keys.risk_events, _mapping(_flat(event)), maxlen=RISK_EVENTS_MAXLEN, approximate=True)
        try:
            await pipe.execute()
        except BaseException:
            self._pending_risk = risk + self._pending_risk  # not lost with the connection
            raise

    async def clear_orders(self) -> None:
        """After shutdown cancelled everything: no stale quotes left for readers."""
        pipe = self._client.pipeline(transaction=True)
        for venue in self._published_venues:
            pipe.delete(self._keys.orders(venue))
        await pipe.execute()


def vars_of(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__slots__}


def _flat(data: dict[str, Any]) -> dict[str, str]:
    """A hash mapping: scalars as text, everything else as JSON."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str):
            out[str(key)] = value
        elif isinstance(value, bool):
            out[str(key)] = "1" if value else "0"
        elif isinstance(value, int | float | Decimal):
            out[str(key)] = str(value)
        elif value is None:
            out[str(key)] = ""
        else:
            out[str(key)] = dumps(value)
    return out


def _mapping(data: dict[str, str]) -> dict[Any, Any]:
    """redis-py's stubs want an invariant key union; our keys are str."""
    return dict(data)
