"""Order records and the order state machine.

Every order we send is an :class:`OrderRecord` whose state only moves along
:data:`TRANSITIONS`; anything else is a bug (or a venue report we misread) and raises
:class:`IllegalTransition` instead of silently overwriting what we know.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

from strategies.types import QuoteTarget, Side


class OrderState(enum.StrEnum):
    """Where one of our orders is, as far as we know."""

    PENDING_NEW = "pending_new"  # written down, request in flight
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"  # cancel sent, not yet confirmed
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # the venue refused it, or it provably never reached the book
    UNKNOWN = "unknown"  # the create timed out or failed mid-way: it may or may not exist

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def may_rest(self) -> bool:
        """True if an order in this state may be resting on the venue's book right now."""
        return self not in _TERMINAL


_TERMINAL = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED})

S = OrderState
#: The allowed moves. Self-moves are listed where a state legitimately repeats (a second
#: partial fill, a cancel re-sent after a timeout).
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.PENDING_NEW: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.UNKNOWN}),
    S.UNKNOWN: frozenset(
        {S.UNKNOWN, S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.PENDING_CANCEL}
    ),
    S.OPEN: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELLED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELLED}),
    # A fill may race the cancel; the order stays pending-cancel until the venue answers.
    S.PENDING_CANCEL: frozenset({S.PENDING_CANCEL, S.CANCELLED, S.FILLED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}
del S


class IllegalTransition(RuntimeError):
    """An order was asked to move between states the table does not connect."""

    def __init__(self, client_order_id: str, old: OrderState, new: OrderState) -> None:
        super().__init__(f"order {client_order_id}: illegal transition {old} -> {new}")
        self.client_order_id = client_order_id
        self.old = old
        self.new = new


Slot = tuple[str, str, str, Side, int]


@dataclass(slots=True)
class OrderRecord:
    """One order of ours, from the moment it is decided until it is finished."""

    client_order_id: str
    venue: str
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    line_id: str
    level: int
    state: OrderState = OrderState.PENDING_NEW
    filled: Decimal = Decimal(0)
    venue_order_id: str | None = None
    reason: str = ""  # why it was rejected / went unknown, for logs and audit
    created_ts: float = 0.0  # wall clock
    updated_ts: float = 0.0
    created_mono: float = 0.0  # monotonic, for ages (not persisted meaningfully across runs)
    history: list[OrderState] = field(default_factory=list)

    @classmethod
    def for_target(cls, target: QuoteTarget, client_order_id: str, now: float, mono: float) -> OrderRecord:
        return cls(
            client_order_id=client_order_id,
            venue=target.venue,
            symbol=target.symbol,
            side=target.side,
            price=target.price,
            size=target.size,
            line_id=target.line_id,
            level=target.level,
            created_ts=now,
            updated_ts=now,
            created_mono=mono,
        )

    @property
    def slot(self) -> Slot:
        return (self.venue, self.symbol, self.line_id, self.side, self.level)

    @property
    def remaining(self) -> Decimal:
        return max(self.size - self.filled, Decimal(0))

    def can_move_to(self, new: OrderState) -> bool:
        return new in TRANSITIONS[self.state]

    def transition(self, new: OrderState, ts: float, reason: str = "") -> None:
        """Move to ``new`` or raise :class:`IllegalTransition`."""
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransition(self.client_order_id, self.state, new)
        self.history.append(self.state)
        self.state = new
        self.updated_ts = ts
        if reason:
            self.reason = reason

    def note_filled(self, cumulative: Decimal) -> None:
        """Raise the filled quantity to a venue-reported cumulative value (never lowers it:
        reports can arrive out of order)."""
        if cumulative > self.filled:
            self.filled = min(cumulative, self.size)
