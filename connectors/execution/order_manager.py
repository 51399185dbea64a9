"""The order manager: makes one venue account match the strategy's latest target set.

It owns every order of the instance on that venue: it decides (through the pure
:mod:`planner`), sends (through the :class:`VenueAdapter`), tracks each order through the
state machine in :mod:`orders`, writes every change and every fill to the store before
acting on it, and reconciles against the venue:

- continuously from the user-data stream (order updates and trades);
- through REST (open orders, my trades) periodically and after every stream error;
- on start (leftovers of a previous run: cancel or adopt) and on stop (cancel all, confirm).

A create that times out is UNKNOWN: its slot stays occupied and it is never re-sent; it is
looked up by client order id after a grace period until the venue gives a definite answer.
A fill is identified by the venue's trade id; it reaches ``on_fill`` only if the store
says it is new, so each is counted exactly once whichever path reports it first.

Fills are known before quantity leaves an order: when the venue reports an order with more
filled than ``on_fill`` has been told (a cancel refused because the order just filled, a
final "filled" update that overtook its trade on the stream), the manager first waits
briefly for the stream's trades and then asks REST for that order's trades; only then does
the record's filled quantity rise, or the record go final and its slot free. A strategy
that sizes new orders from "position + what rests" therefore never sees a filled order
vanish before its fill.

``on_order_event(record, event)`` (optional) hears ``"placed"`` (the venue acknowledged an
order this run sent), ``"cancelled"``, ``"filled"`` and ``"rejected"`` (the record went final).
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, TypeVar

import structlog

from connectors.backoff import Backoff
from connectors.execution.adapter import VenueAdapter, VenueOrder, VenueTrade
from connectors.execution.client_ids import ClientIdFactory, is_own
from connectors.execution.errors import (
    ExecutionError,
    OrderNotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
)
from connectors.execution.orders import OrderRecord, OrderState
from connectors.execution.persistence import ExecutionStore
from connectors.execution.planner import plan
from strategies.clock import Clock
from strategies.types import Fill, MarketRules, QuoteTarget, TargetSet

log = structlog.get_logger(__name__)

_Update = TypeVar("_Update", VenueOrder, VenueTrade)

OnFill = Callable[[Fill], Awaitable[None] | None]
OrderEvent = Literal["placed", "cancelled", "filled", "rejected"]
OnOrderEvent = Callable[[OrderRecord, str], None]
StartupPolicy = Literal["cancel", "adopt"]

_SETTLED = frozenset({OrderState.OPEN, OrderState.PARTIALLY_FILLED})
_RECENT_LIMIT = 20_000  # finished orders kept in memory to attribute late fills
_TRADE_LOOKBACK_S = 5.0  # REST trade catch-up re-reads this much before the newest fill
_FINAL_EVENTS: dict[OrderState, OrderEvent] = {
    OrderState.FILLED: "filled",
    OrderState.CANCELLED: "cancelled",
    OrderState.REJECTED: "rejected",
}
# States that prove the venue took the order (it may have finished since).
_ACKNOWLEDGED = frozenset(
    {
        OrderState.OPEN,
        OrderState.PARTIALLY_FILLED,
        OrderState.PENDING_CANCEL,
        OrderState.FILLED,
        OrderState.CANCELLED,
    }
)


@dataclass(slots=True)
class ManagerStats:
    """Counters for status output and tests."""

    creates_sent: int = 0
    cancels_sent: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    not_sent: Counter[str] = field(default_factory=Counter)  # by reason
    unknown: int = 0
    unknown_resolved: Counter[str] = field(default_factory=Counter)  # found / absent
    rate_limited: int = 0
    fills: int = 0
    duplicate_fills: int = 0
    orphans_cancelled: int = 0
    adopted: int = 0
    leftovers_cancelled: int = 0
    reconciles: int = 0
    stream_errors: int = 0
    out_of_order_reports: int = 0
    stale_reports: int = 0
    fill_catch_ups: int = 0  # REST trade look-ups for one order whose fills the stream had not given


class OrderManager:
    """Keeps one venue account's orders equal to the latest :class:`TargetSet`."""

    def __init__(
        self,
        venue: str,
        adapter: VenueAdapter,
        store: ExecutionStore,
        clock: Clock,
        instance_prefix: str,
        on_fill: OnFill,
        startup_policy: StartupPolicy = "cancel",
        *,
        symbols: Iterable[str] = (),
        reconcile_interval_s: float = 5.0,
        unknown_grace_s: float | None = None,
        watch_user_stream: bool = True,
        cancel_all_rounds: int = 10,
        on_order_event: OnOrderEvent | None = None,
        fill_wait_s: float = 1.0,
    ) -> None:
        if startup_policy not in ("cancel", "adopt"):
            raise ValueError(f"startup_policy must be 'cancel' or 'adopt', not {startup_policy!r}")
        self.venue = venue
        self.adapter = adapter
        self.store = store
        self.clock = clock
        self.prefix = instance_prefix
        self.on_fill = on_fill
        self.startup_policy = startup_policy
        self.reconcile_interval_s = reconcile_interval_s
        # A request that timed out on our side may still be on its way to the venue: look it
        # up no sooner than one client timeout later (ccxt's timeout is in milliseconds).
        if unknown_grace_s is None:
            timeout_ms = getattr(adapter.exchange, "timeout", 1000)
            unknown_grace_s = max(float(timeout_ms) / 1000.0, 1.0)
        self.unknown_grace_s = unknown_grace_s
        self.watch_user_stream = watch_user_stream
        self.cancel_all_rounds = cancel_all_rounds
        self.on_order_event = on_order_event
        # How long a report that is ahead of the fills waits for the stream's trades before
        # asking REST (the stream sends both from one message, so this is rarely reached).
        self.fill_wait_s = fill_wait_s
        self.stats = ManagerStats()
        self._ids = ClientIdFactory(instance_prefix, int(clock.time() * 1000))
        self._rules: dict[str, MarketRules] = {}
        self._symbols: set[str] = set(symbols)
        self._orders: dict[str, OrderRecord] = {}  # live (non-terminal), by client id
        self._recent: OrderedDict[str, OrderRecord] = OrderedDict()  # finished, for late fills
        self._by_venue_id: dict[str, str] = {}
        self._foreign_venue_ids: set[str] = set()
        self._latest: TargetSet | None = None
        self._refused: set[tuple[object, Decimal, Decimal]] = set()  # (slot, price, size) the venue refused
        self._wake = asyncio.Event()
        self._reconcile_now = asyncio.Event()
        self._apply_lock = asyncio.Lock()
        self._reconcile_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._resolvers: dict[str, asyncio.Task[None]] = {}
        # Fills on_fill has had (or an earlier run recorded), per live order: trade id -> qty.
        self._delivered: dict[str, dict[str, Decimal]] = {}
        self._delivering: dict[str, asyncio.Future[None]] = {}  # trade id -> its delivery
        self._fill_waiters: dict[str, set[asyncio.Event]] = {}  # client id -> "a fill arrived"
        self._sent_here: set[str] = set()  # ids this run created, until the venue acknowledges
        self._creating: set[str] = set()  # ids whose create request is being awaited right now
        self._stopping = False
        self._started = False
        self.failure: BaseException | None = None

    # public API ---------------------------------------------------------------------

    def rules(self, symbol: str) -> MarketRules:
        return self._rules[symbol]

    def open_orders(self) -> list[OrderRecord]:
        """Our orders that may rest on the venue right now (every non-terminal state)."""
        return list(self._orders.values())

    async def start(self) -> None:
        """Load markets, handle leftovers per policy, catch up fills, start the tasks."""
        self._rules = await self.adapter.load_markets()
        await self._handle_leftovers()
        await self._catch_up_fills()
        await self.snapshot_balances()
        self._started = True
        self._spawn(self._worker(), "order_worker")
        self._spawn(self._reconcile_loop(), "order_reconcile")
        if self.watch_user_stream:
            self._spawn(self._watch_orders(), "order_stream")
            self._spawn(self._watch_trades(), "trade_stream")
        log.info(
            "order_manager_started", venue=self.venue, live=len(self._orders), policy=self.startup_policy
        )

    async def snapshot_balances(self) -> dict[str, dict[str, Decimal]] | None:
        """Fetch the account's balances and write them to the store (None if the venue
        could not answer; the next snapshot will)."""
        try:
            balances = await self.adapter.fetch_balances()
        except ExecutionError as exc:
            log.info("balance_snapshot_failed", venue=self.venue, error=str(exc)[:120])
            return None
        await self.store.record_balance_snapshot(self.venue, balances, self.clock.time())
        return balances

    def set_targets(self, targets: TargetSet) -> None:
        """Non-blocking: the latest set wins; the worker applies it (stale sets are never queued)."""
        self._accept(targets)
        self._wake.set()

    async def apply(self, targets: TargetSet) -> None:
        """Apply ``targets`` now and return when this round's requests are answered."""
        self._accept(targets)
        # Always yield once: with nothing to send, a caller looping on apply() would
        # otherwise never let the venue's answers (and our own tasks) run.
        await asyncio.sleep(0)
        async with self._apply_lock:
            if not self._stopping:
                await self._apply_once(targets)

    async def cancel_all(self) -> int:
        """Cancel every own order on the venue (found by client id prefix) and confirm with
        ``fetch_open_orders``. Returns how many cancels were confirmed."""
        async with self._apply_lock:
            return await self._cancel_all_locked()

    async def stop(self) -> None:
        """Stop deciding, cancel everything we own, catch up fills, stop the tasks.

        Once the venue confirms nothing of ours is open, every record is final (cancelled,
        or filled per the venue's answer) and written down, and :meth:`open_orders` is empty.
        """
        await self._stop_deciding()
        cancelled = 0
        try:
            cancelled = await self.cancel_all()
            await self._catch_up_fills()
            await self.snapshot_balances()
        finally:
            await self._halt_tasks()
        log.info("order_manager_stopped", venue=self.venue, cancelled=cancelled, live=len(self._orders))

    async def detach(self) -> None:
        """Stop the manager's tasks and streams WITHOUT cancelling its orders.

        For a restart that adopts them (``startup_policy="adopt"``): the orders keep resting,
        their records stay live in the store, and the next manager picks them up. A create
        already in flight is allowed to finish, so nothing is left half-sent.
        """
        await self._stop_deciding()
        await self._halt_tasks()
        log.info("order_manager_detached", venue=self.venue, live=len(self._orders))

    async def _stop_deciding(self) -> None:
        self._stopping = True
        self._wake.set()
        # Let the worker finish its round rather than cancel it: a create cancelled in
        # flight would leave an order we know nothing about.
        worker = [t for t in self._tasks if t.get_name().startswith("order_worker")]
        await asyncio.gather(*worker, return_exceptions=True)

    async def _halt_tasks(self) -> None:
        tasks = [*self._tasks, *self._resolvers.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._resolvers.clear()

    # applying targets --------------------------------------------------------------

    def _accept(self, targets: TargetSet) -> None:
        if targets.venue != self.venue:
            raise ValueError(f"target set for {targets.venue!r} given to the {self.venue!r} order manager")
        self._latest = targets
        self._refused.clear()  # a new set may retry what the venue refused before
        for t in targets.targets:
            self._symbols.add(t.symbol)

    async def _worker(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            targets = self._latest
            if targets is None or self._stopping:
                continue
            async with self._apply_lock:
                if not self._stopping:
                    await self._apply_once(targets)

    async def _apply_once(self, targets: TargetSet) -> None:
        # Two rounds at most: the second places what waited for this round's cancels.
        for _ in range(2):
            # Each round plans against the newest set: one that arrived while this round's
            # requests were out replaces the older (a risk limit may have shrunk it).
            current = self._latest if self._latest is not None else targets
            wanted = [t for t in current.targets if (t.slot, t.price, t.size) not in self._refused]
            decision = plan(wanted, self._orders.values(), self.clock.monotonic())
            for target, reason in decision.blocked:
                self.stats.not_sent[reason] += 1
                log.warning("order_not_sent", venue=self.venue, slot=target.slot, reason=reason)
            if decision.is_empty:
                return
            # Every request runs to its answer even if a sibling fails: a create left running
            # on its own after the round ended would be a request nobody waits for.
            outcomes = await asyncio.gather(
                *(self._cancel(o) for o in decision.cancel),
                *(self._place(t) for t in decision.place),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            if not decision.cancel or not decision.deferred:
                return

    async def _place(self, target: QuoteTarget) -> None:
        rules = self._rules.get(target.symbol)
        if rules is None:
            self.stats.not_sent["unknown_symbol"] += 1
            log.warning("order_not_sent", venue=self.venue, symbol=target.symbol, reason="unknown_symbol")
            return
        price = rules.round_price(target.price, target.side)
        size = rules.round_size(target.size)
        why = rules.violation(price, size)
        if why is not None:
            self.stats.not_sent[f"limits_{why.split(' ', 1)[0]}"] += 1
            self._refused.add((target.slot, target.price, target.size))
            log.warning("order_not_sent", venue=self.venue, slot=target.slot, reason=why)
            return
        now = self.clock.time()
        cid = self._ids.next(target.line_id, target.side, target.level)
        rec = OrderRecord.for_target(target, cid, now, self.clock.monotonic())
        rec.price, rec.size = price, size
        self._orders[cid] = rec
        self._sent_here.add(cid)
        # Written down before it is sent: after a crash, the restart knows this id.
        await self.store.record_order_event(rec)
        self.stats.creates_sent += 1
        self._creating.add(cid)
        try:
            venue_order = await self.adapter.create_post_only(rec.symbol, rec.side, price, size, cid)
        except asyncio.CancelledError:
            # Abandoned in flight: it may or may not rest. UNKNOWN (in memory: the store's
            # pending_new means the same to a restart) so cancel-all looks it up.
            if rec.state is OrderState.PENDING_NEW:
                rec.transition(OrderState.UNKNOWN, self.clock.time(), "create_abandoned")
            raise
        except Rejected as exc:
            self.stats.rejected[exc.reason.value] += 1
            self._refused.add((target.slot, target.price, target.size))
            await self._move(rec, OrderState.REJECTED, exc.reason.value)
        except RateLimited:
            # 429/418 are answered before the venue processes the order: nothing was placed.
            self.stats.rate_limited += 1
            self.stats.rejected["rate_limited"] += 1
            await self._move(rec, OrderState.REJECTED, "rate_limited")
        except (OutcomeUnknown, OrderNotFound) as exc:
            self.stats.unknown += 1
            if rec.state is not OrderState.PENDING_NEW:
                # The user-data stream already reported the order: it exists, nothing is unknown.
                self.stats.unknown_resolved["stream"] += 1
                return
            await self._move(rec, OrderState.UNKNOWN, str(exc)[:200])
            self._schedule_resolve(rec, self.unknown_grace_s)
        else:
            self.stats.accepted += 1
            await self._apply_report(rec, venue_order)
        finally:
            self._creating.discard(cid)

    async def _cancel(self, rec: OrderRecord) -> None:
        if rec.state in _SETTLED:
            await self._move(rec, OrderState.PENDING_CANCEL)
        elif rec.state is not OrderState.PENDING_CANCEL:
            return
        self.stats.cancels_sent += 1
        try:
            venue_order = await self.adapter.cancel(rec.symbol, rec.client_order_id)
        except (OrderNotFound, Rejected):
            # No longer open (Binance -2011): most often it has just filled. Ask what became
            # of it; its fills are caught up before the record goes final and the slot frees.
            if not await self._resolve(rec):
                self._schedule_resolve(rec, self.unknown_grace_s)
        except (OutcomeUnknown, RateLimited) as exc:
            if isinstance(exc, RateLimited):
                self.stats.rate_limited += 1
            self._schedule_resolve(rec, self.unknown_grace_s)
        else:
            if not await self._apply_report(rec, venue_order):
                self._schedule_resolve(rec, self.unknown_grace_s)

    # state bookkeeping -------------------------------------------------------------------

    async def _move(self, rec: OrderRecord, state: OrderState, reason: str = "") -> None:
        rec.transition(state, self.clock.time(), reason)
        await self._persist(rec)
        cid = rec.client_order_id
        if state in _ACKNOWLEDGED and cid in self._sent_here:
            self._sent_here.discard(cid)
            self._emit(rec, "placed")
        final = _FINAL_EVENTS.get(state)
        if final is not None:
            self._sent_here.discard(cid)
            self._emit(rec, final)

    def _emit(self, rec: OrderRecord, event: OrderEvent) -> None:
        if self.on_order_event is None:
            return
        try:
            self.on_order_event(rec, event)
        except Exception:
            # A listener's bug must not stop the state machine half-way through a change.
            log.exception("order_event_listener_failed", cid=rec.client_order_id, order_event=event)

    async def _persist(self, rec: OrderRecord) -> None:
        # Memory first, in the same step as the transition: a coroutine running during the
        # store write must never find a finished order among the live ones.
        if rec.venue_order_id:
            self._by_venue_id[rec.venue_order_id] = rec.client_order_id
        if rec.state.is_terminal and self._orders.pop(rec.client_order_id, None) is not None:
            self._delivered.pop(rec.client_order_id, None)
            self._recent[rec.client_order_id] = rec
            while len(self._recent) > _RECENT_LIMIT:
                self._recent.popitem(last=False)
        self._wake.set()  # a slot may have freed or become decidable
        await self.store.record_order_event(rec)

    async def _apply_report(self, rec: OrderRecord, report: VenueOrder) -> bool:
        """Fold a venue report (REST answer, stream update, lookup) into our record.

        False if the report is ahead of the fills we could learn of (the trades could not be
        fetched): the record is left as it was, to be resolved again later.
        """
        if rec.state.is_terminal:
            self.stats.stale_reports += 1  # e.g. the stream's "new" after our cancel's answer
            return True
        learnt_id = rec.venue_order_id is None and report.venue_order_id not in ("", "None")
        if learnt_id:
            rec.venue_order_id = report.venue_order_id
            self._by_venue_id[report.venue_order_id] = rec.client_order_id
        if not await self._settle_fills(rec, report.filled):
            return False
        if rec.state.is_terminal:  # another path finished it while we fetched its fills
            self.stats.stale_reports += 1
            return True
        old_filled = rec.filled
        rec.note_filled(report.filled)
        new = report.state
        old = rec.state
        if new is old:
            if new is OrderState.PARTIALLY_FILLED and rec.filled != old_filled:
                await self._move(rec, new)
            elif learnt_id:
                await self._persist(rec)
            return True
        if old is OrderState.PENDING_CANCEL and new in _SETTLED:
            if rec.filled != old_filled:
                await self._move(rec, OrderState.PENDING_CANCEL)  # the cancel is still in flight
            return True
        if old is OrderState.PARTIALLY_FILLED and new is OrderState.OPEN:
            return True  # an older report overtaken by a newer one
        if old is OrderState.PENDING_CANCEL and new is OrderState.REJECTED:
            new = OrderState.CANCELLED
        if old is OrderState.UNKNOWN:
            self.stats.unknown_resolved["report"] += 1  # a stream or listing told us first
        if not rec.can_move_to(new):
            self.stats.out_of_order_reports += 1
            log.warning("order_report_ignored", cid=rec.client_order_id, state=old, reported=new)
            return True
        await self._move(rec, new)
        return True

    # resolving unknown and pending-cancel orders -----------------------------------------

    def _schedule_resolve(self, rec: OrderRecord, delay: float) -> None:
        cid = rec.client_order_id
        running = self._resolvers.get(cid)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(self._resolve_later(rec, delay), name=f"resolve:{cid}")
        self._resolvers[cid] = task
        task.add_done_callback(
            lambda t: self._resolvers.pop(cid, None) if self._resolvers.get(cid) is t else None
        )

    async def _resolve_later(self, rec: OrderRecord, delay: float) -> None:
        backoff = max(delay, 0.05)
        while not rec.state.is_terminal and rec.state in (OrderState.UNKNOWN, OrderState.PENDING_CANCEL):
            await asyncio.sleep(backoff)
            if await self._resolve(rec):
                return
            backoff = min(backoff * 2, 2.0)

    async def _resolve(self, rec: OrderRecord) -> bool:
        """Ask the venue about ``rec`` by client id. True once it has a definite answer."""
        was_unknown = rec.state is OrderState.UNKNOWN
        try:
            report = await self.adapter.fetch_order(rec.symbol, rec.client_order_id)
        except OrderNotFound:
            if rec.state is OrderState.UNKNOWN:
                self.stats.unknown_resolved["absent"] += 1
                await self._move(rec, OrderState.REJECTED, "absent_after_unknown")
            elif rec.state is OrderState.PENDING_CANCEL:
                await self._move(rec, OrderState.CANCELLED, "not_found")
            elif rec.state is OrderState.PENDING_NEW:
                return False  # the create is still in flight; its own answer will settle it
            elif not rec.state.is_terminal:
                await self._move(rec, OrderState.PENDING_CANCEL)
                await self._move(rec, OrderState.CANCELLED, "not_found")
            return True
        except (OutcomeUnknown, RateLimited, Rejected) as exc:
            log.info("order_lookup_failed", cid=rec.client_order_id, error=str(exc)[:120])
            return False
        if was_unknown:
            self.stats.unknown_resolved["found"] += 1
        if rec.state is OrderState.PENDING_CANCEL and report.state in _SETTLED:
            # Still open although we asked to cancel (the cancel timed out before the venue saw it).
            if not await self._apply_report(rec, report):
                return False
            await self._cancel(rec)
            return rec.state.is_terminal
        return await self._apply_report(rec, report)

    # fills -------------------------------------------------------------------------------

    async def _owner_of(self, trade: VenueTrade) -> str | None:
        cid = trade.client_order_id or self._by_venue_id.get(trade.venue_order_id)
        if cid is None and trade.venue_order_id not in self._foreign_venue_ids:
            stored = await self.store.order_by_venue_id(self.venue, trade.venue_order_id)
            if stored is not None:
                cid = stored.client_order_id
            else:
                try:
                    cid = (
                        await self.adapter.fetch_order_by_id(trade.symbol, trade.venue_order_id)
                    ).client_order_id
                except ExecutionError as exc:
                    log.info("trade_owner_lookup_failed", trade_id=trade.trade_id, error=str(exc)[:120])
                    return None
        if cid is None or not is_own(self.prefix, cid):
            self._foreign_venue_ids.add(trade.venue_order_id)
            return None
        self._by_venue_id[trade.venue_order_id] = cid
        return cid

    def _delivered_qty(self, cid: str) -> Decimal:
        return sum(self._delivered.get(cid, {}).values(), Decimal(0))

    async def _settle_fills(self, rec: OrderRecord, venue_filled: Decimal) -> bool:
        """Make sure ``on_fill`` has had fills adding up to ``venue_filled`` of ``rec``
        before anything acts on that quantity. True once it has."""
        cid = rec.client_order_id
        if venue_filled <= rec.filled or venue_filled <= self._delivered_qty(cid):
            return True
        if self.watch_user_stream and self._started and not self._stopping:
            # The stream carries the trade in the same message as the order update: give
            # the trade task the moment it needs before paying for a REST look-up.
            waiter = asyncio.Event()
            waiters = self._fill_waiters.setdefault(cid, set())
            waiters.add(waiter)
            try:
                async with asyncio.timeout(self.fill_wait_s):
                    while self._delivered_qty(cid) < venue_filled:
                        waiter.clear()
                        await waiter.wait()
                return True
            except TimeoutError:
                pass
            finally:
                waiters.discard(waiter)
                if not waiters:
                    self._fill_waiters.pop(cid, None)
        self.stats.fill_catch_ups += 1
        await self._catch_up_order(rec)
        if self._delivered_qty(cid) >= venue_filled:
            return True
        log.info(
            "order_fills_not_yet_known",
            cid=cid,
            venue_filled=str(venue_filled),
            known=str(self._delivered_qty(cid)),
        )
        return False

    async def _catch_up_order(self, rec: OrderRecord) -> None:
        """Every trade of one order, from REST, through the usual exactly-once path."""
        if rec.venue_order_id is None:
            await self._catch_up_symbol(rec.symbol)
            return
        try:
            trades = await self.adapter.fetch_my_trades(rec.symbol, venue_order_id=rec.venue_order_id)
        except ExecutionError as exc:
            log.info("order_fill_catch_up_failed", cid=rec.client_order_id, error=str(exc)[:120])
            return
        for t in trades:
            await self._on_trade(t)

    def _note_delivered(self, cid: str, trade: VenueTrade) -> None:
        if cid in self._orders:  # only live orders need the tally (see _settle_fills)
            self._delivered.setdefault(cid, {})[trade.trade_id] = trade.qty
        for waiter in self._fill_waiters.get(cid, ()):
            waiter.set()

    async def _on_trade(self, trade: VenueTrade) -> None:
        # The stream and a REST catch-up may bring the same trade at once: the second waits
        # for the first, so "delivered" is never said of a fill on_fill has not had yet.
        running = self._delivering.get(trade.trade_id)
        if running is not None:
            await running
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._delivering[trade.trade_id] = done
        try:
            await self._deliver(trade)
        finally:
            del self._delivering[trade.trade_id]
            done.set_result(None)

    async def _deliver(self, trade: VenueTrade) -> None:
        cid = await self._owner_of(trade)
        if cid is None:
            return
        rec = self._orders.get(cid) or self._recent.get(cid) or await self.store.order(self.venue, cid)
        fill = Fill(
            venue=self.venue,
            symbol=trade.symbol,
            side=trade.side,
            price=trade.price,
            qty=trade.qty,
            fee=trade.fee,
            fee_asset=trade.fee_asset,
            trade_id=trade.trade_id,
            client_order_id=cid,
            line_id=rec.line_id if rec is not None else "",
            ts=trade.ts,
            is_maker=trade.is_maker,
        )
        # Durable first, then acknowledged: a crash between the two re-delivers nothing twice
        # and loses nothing (the restart's catch-up finds the fill already recorded).
        if not await self.store.record_fill(fill):
            self.stats.duplicate_fills += 1  # recorded (and acknowledged) before
            self._note_delivered(cid, trade)
            return
        self.stats.fills += 1
        result = self.on_fill(fill)
        if inspect.isawaitable(result):
            await result
        self._note_delivered(cid, trade)

    async def _catch_up_fills(self) -> None:
        for symbol in sorted(self._symbols):
            await self._catch_up_symbol(symbol)

    async def _catch_up_symbol(self, symbol: str) -> None:
        last = await self.store.last_fill_ts(self.venue, symbol)
        since = None if last is None else last - _TRADE_LOOKBACK_S
        seen: set[str] = set()
        while True:
            try:
                trades = await self.adapter.fetch_my_trades(symbol, since)
            except ExecutionError as exc:
                log.info("fill_catch_up_failed", venue=self.venue, symbol=symbol, error=str(exc)[:120])
                return
            fresh = [t for t in trades if t.trade_id not in seen]
            for t in fresh:
                seen.add(t.trade_id)
                await self._on_trade(t)
            # Binance pages forward from startTime; a full page means there may be more.
            if len(trades) < 1000 or not fresh:
                return
            since = max(t.ts for t in trades)

    # leftovers, reconciliation ------------------------------------------------------------

    async def _own_open_orders(self) -> list[VenueOrder]:
        if not self._symbols:
            orders = await self.adapter.fetch_open_orders(None)
        else:
            orders = []
            for symbol in sorted(self._symbols):
                orders.extend(await self.adapter.fetch_open_orders(symbol))
        return [o for o in orders if is_own(self.prefix, o.client_order_id)]

    async def _adopt_record(self, report: VenueOrder, stored: OrderRecord | None) -> OrderRecord:
        now = self.clock.time()
        if stored is None or stored.state.is_terminal:
            stored = OrderRecord(
                client_order_id=str(report.client_order_id),
                venue=self.venue,
                symbol=report.symbol,
                side=report.side,
                price=report.price,
                size=report.amount,
                line_id="adopted",
                level=-1,
                state=OrderState.UNKNOWN,
                created_ts=now,
                updated_ts=now,
            )
        stored.created_mono = self.clock.monotonic()  # its age in this run starts now
        if stored.state is OrderState.PENDING_NEW:
            # The previous run never learnt the answer.
            stored.transition(OrderState.UNKNOWN, now, "previous_run")
        return stored

    async def _handle_leftovers(self) -> None:
        stored_live = {o.client_order_id: o for o in await self.store.live_orders(self.venue)}
        self._symbols.update(o.symbol for o in stored_live.values())
        on_venue = await self._own_open_orders()
        for report in on_venue:
            cid = str(report.client_order_id)
            stored = stored_live.pop(cid, None) or await self.store.order(self.venue, cid)
            rec = await self._adopt_record(report, stored)
            self._symbols.add(rec.symbol)
            self._orders[cid] = rec
            await self._apply_report(rec, report)
            if self.startup_policy == "adopt":
                self.stats.adopted += 1
                if rec.state is OrderState.PENDING_CANCEL:
                    self._schedule_resolve(rec, 0.0)  # the previous run wanted it gone
            else:
                await self._cancel(rec)
                self.stats.leftovers_cancelled += 1
        # Recorded as live but not open on the venue: learn how they ended.
        for rec in stored_live.values():
            if rec.state is OrderState.PENDING_NEW:
                await self._move(rec, OrderState.UNKNOWN, "previous_run")
            self._orders[rec.client_order_id] = rec
            if not await self._resolve(rec):
                self._schedule_resolve(rec, self.unknown_grace_s)
        log.info(
            "leftovers_handled",
            venue=self.venue,
            policy=self.startup_policy,
            on_venue=len(on_venue),
            stale_records=len(stored_live),
        )

    async def _cancel_orphan(self, report: VenueOrder) -> None:
        """An own order open on the venue that we hold no live record of: take it off."""
        cid = str(report.client_order_id)
        self.stats.orphans_cancelled += 1
        log.warning("orphan_order_cancelled", venue=self.venue, cid=cid)
        try:
            await self.adapter.cancel(report.symbol, cid)
        except ExecutionError as exc:
            log.info("orphan_cancel_failed", cid=cid, error=str(exc)[:120])

    async def _reconcile(self) -> None:
        """Open orders and trades from REST against what we hold."""
        async with self._reconcile_lock:
            self.stats.reconciles += 1
            started = self.clock.time()
            try:
                on_venue = await self._own_open_orders()
            except ExecutionError as exc:
                log.info("reconcile_failed", venue=self.venue, error=str(exc)[:120])
                return
            seen = set()
            for report in on_venue:
                cid = str(report.client_order_id)
                seen.add(cid)
                rec = self._orders.get(cid)
                if rec is None:
                    finished = self._recent.get(cid)
                    if finished is None or finished.updated_ts < started:
                        await self._cancel_orphan(report)
                elif rec.state is not OrderState.PENDING_NEW:
                    await self._apply_report(rec, report)
            for rec in list(self._orders.values()):
                if rec.client_order_id not in seen and rec.state in _SETTLED and rec.updated_ts < started:
                    await self._resolve(rec)  # gone from the book: filled or cancelled
            await self._catch_up_fills()

    async def _reconcile_loop(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._reconcile_now.wait(), self.reconcile_interval_s)
            except TimeoutError:
                pass
            self._reconcile_now.clear()
            await self._reconcile()

    async def _cancel_all_locked(self) -> int:
        confirmed = 0
        for round_no in range(self.cancel_all_rounds):
            if round_no:
                # A lookup or listing that failed is retried, not hammered.
                await asyncio.sleep(min(0.05 * 2**round_no, 1.0))
            # A record still pending_new whose create nobody is waiting for (its task was
            # cancelled mid-request) would never get an answer: it is unknown, like a timeout.
            for rec in [r for r in self._orders.values() if r.state is OrderState.PENDING_NEW]:
                if rec.client_order_id not in self._creating:
                    await self._move(rec, OrderState.UNKNOWN, "create_abandoned")
            # Orders whose create timed out may be resting: ask about them first. (No grace
            # period here: at shutdown a late lookup costs more than an early one.)
            for rec in [r for r in self._orders.values() if r.state is OrderState.UNKNOWN]:
                await self._resolve(rec)
            try:
                on_venue = await self._own_open_orders()
            except ExecutionError as exc:
                log.info("cancel_all_list_failed", venue=self.venue, error=str(exc)[:120])
                await asyncio.sleep(max(self.adapter.limiter.paused_for, 0.2))
                continue
            if not on_venue:
                # Nothing of ours rests. Whatever we still hold as live ended somehow
                # (filled, or its cancel answer was lost): learn how (fills first), then we
                # are done. An order the venue still calls open was listed a moment too
                # early: the next round cancels it.
                for rec in list(self._orders.values()):
                    if rec.state is not OrderState.UNKNOWN:
                        await self._resolve(rec)
                if not self._orders:
                    return confirmed
                continue
            recs = []
            for report in on_venue:
                cid = str(report.client_order_id)
                live = self._orders.get(cid)
                if live is None:
                    live = await self._adopt_record(report, await self.store.order(self.venue, cid))
                    self._orders[cid] = live
                if live.state in (OrderState.PENDING_NEW, OrderState.UNKNOWN):
                    await self._apply_report(live, report)
                recs.append(live)
            await asyncio.gather(*(self._cancel(r) for r in recs))
            confirmed += sum(1 for r in recs if r.state is OrderState.CANCELLED)
        log.error("cancel_all_unconfirmed", venue=self.venue, live=len(self._orders))
        return confirmed

    # user-data stream -------------------------------------------------------------------

    async def _on_stream_error(self, exc: BaseException) -> None:
        self.stats.stream_errors += 1
        log.warning("user_stream_error", venue=self.venue, error=str(exc)[:160])
        self._reconcile_now.set()
        # ccxt re-subscribes on the next watch call: reconcile again once it has had time to.
        asyncio.get_running_loop().call_later(1.0, self._reconcile_now.set)

    async def _watch_orders(self) -> None:
        async def on_reports(reports: list[VenueOrder]) -> None:
            for report in reports:
                cid = report.client_order_id
                if not is_own(self.prefix, cid):
                    continue
                rec = self._orders.get(str(cid))
                if rec is not None:
                    await self._apply_report(rec, report)
                elif report.state in _SETTLED and str(cid) not in self._recent:
                    await self._cancel_orphan(report)

        await self._watch_stream(self.adapter.watch_orders, on_reports)

    async def _watch_trades(self) -> None:
        async def on_trades(trades: list[VenueTrade]) -> None:
            for trade in trades:
                await self._on_trade(trade)

        await self._watch_stream(self.adapter.watch_my_trades, on_trades)

    async def _watch_stream(
        self,
        watch: Callable[[], Awaitable[list[_Update]]],
        handle: Callable[[list[_Update]], Awaitable[None]],
    ) -> None:
        """Feed one user-data stream to ``handle``; on an error reconcile by REST and back off."""
        backoff = Backoff(base_s=0.2, cap_s=5.0)
        while not self._stopping:
            try:
                updates = await watch()
            except ExecutionError as exc:
                await self._on_stream_error(exc)
                await asyncio.sleep(backoff.next_delay(self.clock.monotonic()))
                continue
            backoff.connected(self.clock.monotonic())
            await handle(updates)

    # task plumbing ----------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(f"{name}:{self.venue}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.failure = exc
            log.error("order_manager_task_failed", task=task.get_name(), error=repr(exc))
