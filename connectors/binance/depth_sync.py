"""Binance's diff-depth bridging rules for one symbol, as a pure state machine (no sockets).

From Binance's "How to manage a local order book correctly" (spot):

1. Open the stream and buffer the events (each has ``U``, the first update id in the
   event, and ``u``, the last).
2. Fetch a REST snapshot; it carries ``lastUpdateId`` (L).
3. If L is older than the first buffered event (L + 1 < its ``U``), the snapshot cannot be
   bridged: fetch another one.
4. Drop buffered events with ``u <= L``; the first applied event must have
   ``U <= L + 1 <= u``.
5. From then on each event's ``U`` must equal the previous event's ``u + 1``; anything else
   is a gap and the book must be rebuilt from a new snapshot.

The machine tells the feed what happened (``SyncOutcome``); the feed turns outcomes into
health and snapshot requests. While out of sync the book is frozen (not updated) and the
feed marks it RESYNCING, so nothing downstream trusts it.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Sequence

from strategies.book import L2Book, Level

Levels = Sequence[Level]
BufferedEvent = tuple[int, int, Levels, Levels, float]  # U, u, bids, asks, ts


class SyncOutcome(enum.IntEnum):
    """What one event or snapshot did to the book."""

    APPLIED = 0  # event applied in sequence
    IGNORED = 1  # event older than the book (u <= seq): dropped, as the rules say
    BUFFERED = 2  # no usable snapshot yet: event kept for bridging
    GAP = 3  # sequence broken: book out of sync until a new snapshot bridges
    SYNCED = 4  # snapshot (plus buffered events) applied: book in sync
    SNAPSHOT_TOO_OLD = 5  # snapshot ends before the buffered events begin: fetch another


# Module constants: an enum member read through its class costs an attribute lookup per event.
_APPLIED = SyncOutcome.APPLIED
_IGNORED = SyncOutcome.IGNORED
_BUFFERED = SyncOutcome.BUFFERED


class DepthSync:
    """Bridges a REST snapshot and the diff stream of one symbol into ``book``."""

    __slots__ = ("_apply", "_bridged", "_buffer", "book", "gap_reason", "synced")

    def __init__(self, book: L2Book, max_buffer: int = 10_000) -> None:
        """``max_buffer`` bounds events kept while waiting for a snapshot (oldest dropped first).

        Dropping the oldest is safe: the next snapshot then fails to bridge and is refetched.
        """
        self.book = book
        # bound once: the apply is the one call every in-sequence event makes
        self._apply: Callable[[Levels, Levels, int, float], None] = book.apply_delta
        self.synced = False
        self.gap_reason = ""
        self._bridged = False  # first event after the snapshot applied (strict U == seq + 1 from then on)
        self._buffer: deque[BufferedEvent] = deque(maxlen=max_buffer)

    @property
    def buffered(self) -> int:
        """Events waiting for a snapshot."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget the sequence (a new connection): buffer until the next snapshot."""
        self.synced = False
        self._bridged = False
        self._buffer.clear()

    def on_event(self, first_id: int, last_id: int, bids: Levels, asks: Levels, ts: float) -> SyncOutcome:
        """One ``depthUpdate`` with ``U=first_id``, ``u=last_id``."""
        if not self.synced:
            self._buffer.append((first_id, last_id, bids, asks, ts))
            return _BUFFERED
        seq = self.book.seq
        if last_id <= seq:
            return _IGNORED
        if first_id == seq + 1 or (not self._bridged and first_id <= seq + 1):
            self._apply(bids, asks, last_id, ts)
            self._bridged = True
            return _APPLIED
        self.gap_reason = f"gap: expected U={seq + 1}, got U={first_id} u={last_id}"
        self.synced = False
        self._bridged = False
        self._buffer.clear()
        # This event is newer than anything applied; a later snapshot may still bridge it.
        self._buffer.append((first_id, last_id, bids, asks, ts))
        return SyncOutcome.GAP

    def on_snapshot(self, last_update_id: int, bids: Levels, asks: Levels, ts: float) -> SyncOutcome:
        """A REST depth snapshot with ``lastUpdateId``; applies whatever buffered events bridge."""
        buffer = self._buffer
        while buffer and buffer[0][1] <= last_update_id:
            buffer.popleft()
        if buffer and buffer[0][0] > last_update_id + 1:
            self.gap_reason = (
                f"snapshot lastUpdateId={last_update_id} older than first buffered U={buffer[0][0]}"
            )
            return SyncOutcome.SNAPSHOT_TOO_OLD
        book = self.book
        book.apply_snapshot(bids, asks, last_update_id, ts)
        self.synced = True
        self._bridged = False
        pending = list(buffer)
        buffer.clear()
        for i, (first_id, last_id, ev_bids, ev_asks, ev_ts) in enumerate(pending):
            if self.on_event(first_id, last_id, ev_bids, ev_asks, ev_ts) is SyncOutcome.GAP:
                # on_event re-buffered the breaking event; keep what came after it too
                buffer.extend(pending[i + 1 :])
                return SyncOutcome.GAP
        return SyncOutcome.SYNCED
