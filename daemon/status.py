"""What ``stackmm status`` shows: a snapshot of one instance read from Redis, as text or JSON.

Read-only and independent of the daemon process: it works from any host that reaches the
instance's Redis, and says plainly when the instance has not published for a while.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from daemon.redis_keys import INSTANCES, RedisKeys

STALE_HEARTBEAT_S = 5.0
RECENT_RISK_S = 300.0  # risk events older than this are not shown as warnings


class BookTop(BaseModel):
    venue: str  # "agg" for the aggregated book
    symbol: str
    bid: float | None = None
    bid_qty: float | None = None
    ask: float | None = None
    ask_qty: float | None = None
    state: str = ""
    age_s: float | None = None
    resync_count: int = 0

    @property
    def spread_bps(self) -> float | None:
        if self.bid is None or self.ask is None or self.bid <= 0:
            return None
        return (self.ask - self.bid) / ((self.ask + self.bid) / 2) * 1e4


class Quote(BaseModel):
    venue: str
    client_order_id: str
    line_id: str = ""
    side: str = ""
    price: str = ""
    size: str = ""
    symbol: str = ""
    level: int = 0


class StatusSnapshot(BaseModel):
    """One instance's state as published to Redis."""

    instance: str
    read_at: float
    status: str = "unknown"
    paused: bool = False
    heartbeat: float | None = None
    pid: int | None = None
    host: str = ""
    warnings: list[str] = Field(default_factory=list)
    feeds: dict[str, dict[str, Any]] = Field(default_factory=dict)
    tasks: dict[str, str] = Field(default_factory=dict)
    books: list[BookTop] = Field(default_factory=list)
    quotes: list[Quote] = Field(default_factory=list)
    lines: dict[str, dict[str, str]] = Field(default_factory=dict)
    inventory: dict[str, Any] = Field(default_factory=dict)
    coefficients: dict[str, float] = Field(default_factory=dict)
    pnl: dict[str, Any] = Field(default_factory=dict)
    risk_events: list[dict[str, str]] = Field(default_factory=list)

    @property
    def heartbeat_age_s(self) -> float | None:
        return None if self.heartbeat is None else max(0.0, self.read_at - self.heartbeat)

    @property
    def alive(self) -> bool:
        age = self.heartbeat_age_s
        return age is not None and age < STALE_HEARTBEAT_S


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _hash(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


async def list_instances(client: aioredis.Redis) -> list[str]:
    return sorted(_text(m) for m in await client.smembers(INSTANCES))  # type: ignore[misc]


async def _scan(client: aioredis.Redis, pattern: str) -> list[str]:
    return sorted([_text(k) async for k in client.scan_iter(match=pattern, count=500)])


async def read_status(client: aioredis.Redis, keys: RedisKeys, risk_events: int = 5) -> StatusSnapshot:
    """Read everything ``status`` shows for one instance."""
    now = time.time()
    health = _hash(await client.hgetall(keys.health))  # type: ignore[misc]
    snap = StatusSnapshot(instance=keys.instance, read_at=now)
    if health:
        snap.status = health.get("status", "unknown")
        snap.paused = health.get("paused") == "1"
        snap.heartbeat = _float(health.get("heartbeat"))
        pid = health.get("pid", "")
        snap.pid = int(pid) if pid.isdigit() else None
        snap.host = health.get("host", "")
        snap.warnings = list(_json(health.get("warnings"), []))
        snap.feeds = dict(_json(health.get("feeds"), {}))
        snap.tasks = dict(_json(health.get("tasks"), {}))

    book_prefix = f"{keys.prefix}:book:"
    for key in await _scan(client, f"{book_prefix}*"):
        venue, _, symbol = key[len(book_prefix):].partition(":")
        snap.books.append(_book_top(venue, symbol, _hash(await client.hgetall(key)), now))  # type: ignore[misc]

    order_prefix = f"{keys.prefix}:orders:"
    for key in await _scan(client, f"{order_prefix}*"):
        venue = key[len(order_prefix):]
        for coid, raw in _hash(await client.hgetall(key)).items():  # type: ignore[misc]
            order = _json(raw, {})
            if not isinstance(order, dict):
                continue
            snap.quotes.append(Quote(
                venue=venue, client_order_id=coid, line_id=str(order.get("line_id", "")),
                side=str(order.get("side", "")), price=str(order.get("price", "")),
                size=str(order.get("size", order.get("remaining", ""))),
                symbol=str(order.get("symbol", "")), level=int(order.get("level", 0) or 0),
            ))
    snap.quotes.sort(key=lambda q: (q.line_id, q.venue, q.side, q.level, q.price))

    for line_id in sorted(_text(m) for m in await client.smembers(keys.lines)):  # type: ignore[misc]
        snap.lines[line_id] = _hash(await client.hgetall(keys.line(line_id)))  # type: ignore[misc]
    snap.inventory = {k: _json(v, v) for k, v in _hash(await client.hgetall(keys.inventory)).items()}  # type: ignore[misc]
    for name, value in _hash(await client.hgetall(keys.coefficients)).items():  # type: ignore[misc]
        number = _float(value)
        if number is not None:
            snap.coefficients[name] = number
    snap.pnl = {k: _pnl_value(v) for k, v in _hash(await client.hgetall(keys.pnl)).items()}  # type: ignore[misc]
    if risk_events:
        events: Any = await client.xrevrange(keys.risk_events, count=risk_events)
        for _id, raw in events:
            snap.risk_events.append(_hash(raw))
    return snap


def _pnl_value(text: str) -> Any:
    number = _float(text)
    if number is not None:
        return number
    return _json(text, text)


def _book_top(venue: str, symbol: str, fields: dict[str, str], now: float) -> BookTop:
    bids = _json(fields.get("bids"), [])
    asks = _json(fields.get("asks"), [])
    top = BookTop(venue=venue, symbol=symbol, state=fields.get("state", ""))
    with contextlib.suppress(IndexError, TypeError, ValueError):
        top.bid, top.bid_qty = float(bids[0][0]), float(bids[0][1])
    with contextlib.suppress(IndexError, TypeError, ValueError):
        top.ask, top.ask_qty = float(asks[0][0]), float(asks[0][1])
    ts = _float(fields.get("ts"))
    if ts is not None:
        # the mirror may write ms or s; a ms timestamp is ~1e12
        ts = ts / 1000 if ts > 1e11 else ts
        top.age_s = max(0.0, now - ts)
    with contextlib.suppress(ValueError):
        top.resync_count = int(fields.get("resync_count", "0") or 0)
    return top


def render_json(snap: StatusSnapshot) -> str:
    data = snap.model_dump()
    data["alive"] = snap.alive
    data["heartbeat_age_s"] = snap.heartbeat_age_s
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def _num(value: Any, digits: int = 6) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float | int):
        return f"{value:.{digits}g}"
    return str(value)


def render_text(snap: StatusSnapshot) -> str:
    """A readable, fixed-layout report (also the frame of ``--watch``)."""
    out: list[str] = []
    age = snap.heartbeat_age_s
    if snap.heartbeat is None:
        head = "no state published (never started, or wrong Redis/instance?)"
    elif snap.alive:
        head = f"{snap.status}{' (paused)' if snap.paused and snap.status != 'paused' else ''}"
    else:
        head = f"NOT RUNNING? last heartbeat {age:.0f}s ago (was {snap.status})"
    where = f"  pid {snap.pid} on {snap.host}" if snap.pid else ""
    out.append(f"instance {snap.instance}: {head}{where}")

    if snap.feeds:
        out.append("")
        out.append("feeds")
        for name, feed in sorted(snap.feeds.items()):
            feed_age = feed.get("age_s")
            age_text = "-" if feed_age is None else f"{feed_age:.1f}s"
            extra = f"  {feed.get('reason')}" if feed.get("reason") else ""
            out.append(f"  {name:<22} {feed.get('state', '?'):<13} age {age_text:<7}"
                       f" resyncs {feed.get('resync_count', 0)}{extra}")
    if snap.books:
        out.append("")
        out.append(f"  {'book':<22} {'bid':>12} {'qty':>10}   {'ask':>12} {'qty':>10}  {'spread':>8}")
        for book in snap.books:
            spread = book.spread_bps
            out.append(
                f"  {book.venue + ' ' + book.symbol:<22} {_num(book.bid):>12} {_num(book.bid_qty):>10}"
                f"   {_num(book.ask):>12} {_num(book.ask_qty):>10}  "
                f"{'-' if spread is None else f'{spread:.1f}bp':>8}"
            )
    out.append("")
    out.append(f"our quotes ({len(snap.quotes)})")
    if not snap.quotes:
        out.append("  none")
    current = None
    for q in snap.quotes:
        if q.line_id != current:
            current = q.line_id
            out.append(f"  line {current or '?'}")
        out.append(f"    {q.venue:<8} {q.side:<4} {q.price:>12} x {q.size:<12} {q.client_order_id}")
    if snap.inventory or snap.coefficients:
        out.append("")
        out.append("inventory")
        for asset, value in sorted(snap.inventory.items()):
            if isinstance(value, dict):
                detail = "  ".join(f"{k} {_num(v)}" for k, v in value.items())
            else:
                detail = _num(value)
            out.append(f"  {asset:<8} {detail}")
        if snap.coefficients:
            coeffs = "  ".join(f"{k} {_num(v, 4)}" for k, v in sorted(snap.coefficients.items()))
            out.append(f"  coefficients  {coeffs}")
    if snap.pnl:
        pnl = snap.pnl
        out.append("")
        by_venue = pnl.get("fills_by_venue") or {}
        venues = ""
        if isinstance(by_venue, dict):
            venues = ", ".join(f"{v} {n}" for v, n in sorted(by_venue.items()))
        out.append(f"fills {_num(pnl.get('fills'))}{f' ({venues})' if venues else ''}"
                   f"  volume {_num(pnl.get('volume_quote'))}  fees {_num(pnl.get('fees_quote'))}")
        quote = pnl.get("quote") or "quote"
        out.append(f"position {_num(pnl.get('position'))}  mark {_num(pnl.get('mark'))}"
                   f"  PnL {_num(pnl.get('pnl_quote'))} {quote} since start (after fees, marked to market)")
    failed = [name for name, state in snap.tasks.items() if state == "failed"]
    warnings = list(snap.warnings) + [f"task {name} failed" for name in failed]
    for event in snap.risk_events:
        # info events (a book recovered, a resume) are history, not warnings; old ones neither
        ts = _float(event.get("ts"))
        recent = ts is None or snap.read_at - ts < RECENT_RISK_S
        if event.get("severity", "warning") != "info" and recent:
            where = " ".join(x for x in (event.get("venue", ""), event.get("symbol", "")) if x)
            warnings.append(f"risk {event.get('kind', '')}{' ' + where if where else ''}: "
                            f"{event.get('detail', '')}".rstrip(": "))
    if warnings:
        out.append("")
        out.append("warnings")
        out += [f"  ! {w}" for w in warnings]
    return "\n".join(out)


class TargetError(RuntimeError):
    """The command cannot tell which Redis or which instance it should talk to."""


def add_target_arguments(parser: Any) -> None:
    """``--instance`` / ``--redis-url`` / ``--state-dir``, shared by status, control and inspect."""
    parser.add_argument("--instance", help="instance name (default: $STACKMM_INSTANCE, or the only one)")
    parser.add_argument("--redis-url", help="Redis URL (default: $STACKMM_REDIS_URL, or the embedded "
                        "Redis of the daemon using --state-dir)")
    parser.add_argument("--state-dir", help="state directory of a daemon using embedded Redis "
                        "(default: $STACKMM_STATE_DIR or ./state)")


def resolve_redis_url(redis_url: str | None, state_dir: str | None) -> str:
    from pathlib import Path

    from daemon.embedded_redis import discover_url
    from daemon.settings import Settings

    if redis_url:
        return redis_url
    settings = Settings()
    if settings.redis_url:
        return settings.redis_url
    directory = Path(state_dir) if state_dir else settings.state_dir
    found = discover_url(directory)
    if found:
        return found
    raise TargetError(
        f"no Redis to read: pass --redis-url, set STACKMM_REDIS_URL, or point --state-dir at the "
        f"state directory of a running daemon with embedded Redis (looked in {directory})"
    )


async def resolve_instance(client: aioredis.Redis, instance: str | None) -> RedisKeys:
    from daemon.settings import Settings

    name = instance or Settings().instance
    if name:
        return RedisKeys(name)
    known = await list_instances(client)
    if len(known) == 1:
        return RedisKeys(known[0])
    if not known:
        raise TargetError("no stackmm instance has published to this Redis yet")
    raise TargetError(f"several instances in this Redis, pick one with --instance: {', '.join(known)}")
