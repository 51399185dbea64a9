"""Binance's U/u bridging rules, without sockets: DepthSync against hand-built event sequences."""

from __future__ import annotations

import random

from connectors.binance.depth_sync import DepthSync, SyncOutcome
from strategies.book import L2Book


def _sync() -> DepthSync:
    return DepthSync(L2Book("alpha", "BERA/USDT"))


def _ev(sync: DepthSync, first: int, last: int, bids: list[list[str]] | None = None,
        asks: list[list[str]] | None = None) -> SyncOutcome:
    return sync.on_event(first, last, bids or [], asks or [], float(last))


SNAP_BIDS = [["1.00", "5"], ["0.99", "7"]]
SNAP_ASKS = [["1.01", "4"], ["1.02", "9"]]


def test_events_before_the_snapshot_are_buffered_not_applied() -> None:
    sync = _sync()
    assert _ev(sync, 101, 105, [["1.00", "6"]]) is SyncOutcome.BUFFERED
    assert sync.buffered == 1
    assert sync.book.version == 0
    assert not sync.synced


def test_snapshot_drops_events_it_already_contains_and_applies_the_bridging_one() -> None:
    sync = _sync()
    _ev(sync, 90, 95, [["1.00", "1"]])  # u <= lastUpdateId: already in the snapshot
    _ev(sync, 96, 103, [["1.00", "6"]])  # U <= 101 <= u: bridges
    _ev(sync, 104, 104, asks=[["1.01", "0"]])
    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS, 0.0) is SyncOutcome.SYNCED
    book = sync.book
    assert book.seq == 104
    assert book.bid_qty(1.00) == 6.0  # from the bridging event, not the stale one
    assert book.best_ask() == 1.02  # 1.01 removed by qty 0
    assert sync.buffered == 0


def test_snapshot_older_than_the_buffered_stream_is_refused() -> None:
    sync = _sync()
    _ev(sync, 120, 125)
    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS, 0.0) is SyncOutcome.SNAPSHOT_TOO_OLD
    assert not sync.synced
    assert sync.buffered == 1  # kept for the next snapshot
    assert sync.on_snapshot(122, SNAP_BIDS, SNAP_ASKS, 0.0) is SyncOutcome.SYNCED
    assert sync.book.seq == 125


def test_snapshot_newer_than_everything_buffered_waits_for_a_bridging_event() -> None:
    sync = _sync()
    _ev(sync, 90, 95)
    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS, 0.0) is SyncOutcome.SYNCED
    assert _ev(sync, 97, 100) is SyncOutcome.IGNORED
    assert _ev(sync, 99, 102, [["1.00", "8"]]) is SyncOutcome.APPLIED  # first: U <= 101 <= u
    assert sync.book.bid_qty(1.00) == 8.0
    assert _ev(sync, 103, 103) is SyncOutcome.APPLIED  # then strictly U == u + 1


def test_first_event_after_snapshot_that_skips_ids_is_a_gap() -> None:
    sync = _sync()
    sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS, 0.0)
    assert _ev(sync, 103, 104) is SyncOutcome.GAP
    assert not sync.synced
    assert "expected U=101" in sync.gap_reason


def test_gap_in_the_live_stream_freezes_the_book_until_a_new_snapshot_bridges() -> None:
    sync = _sync()
    sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS, 0.0)
    assert _ev(sync, 101, 101) is SyncOutcome.APPLIED
    version = sync.book.version
    assert _ev(sync, 105, 106, [["1.00", "1"]]) is SyncOutcome.GAP
    assert _ev(sync, 107, 108, [["0.99", "2"]]) is SyncOutcome.BUFFERED
    assert sync.book.version == version  # frozen: nothing applied while out of sync
    assert sync.on_snapshot(106, [["1.00", "1"], ["0.99", "7"]], SNAP_ASKS, 0.0) is SyncOutcome.SYNCED
    assert sync.book.seq == 108
    assert sync.book.bid_qty(0.99) == 2.0


def test_overlapping_event_after_the_bridge_is_a_gap_not_a_silent_reapply() -> None:
    sync = _sync()
    sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS, 0.0)
    _ev(sync, 101, 105)
    assert _ev(sync, 104, 107) is SyncOutcome.GAP


def test_gap_inside_the_buffer_keeps_the_events_after_the_break() -> None:
    sync = _sync()
    _ev(sync, 101, 102)
    _ev(sync, 105, 106)  # 103-104 missing
    _ev(sync, 107, 108)
    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS, 0.0) is SyncOutcome.GAP
    assert not sync.synced
    assert sync.buffered == 2  # the breaking event and the one after it
    assert sync.on_snapshot(104, SNAP_BIDS, SNAP_ASKS, 0.0) is SyncOutcome.SYNCED
    assert sync.book.seq == 108


def test_reset_forgets_the_sequence_and_buffers_again() -> None:
    sync = _sync()
    sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS, 0.0)
    sync.reset()
    assert _ev(sync, 101, 101) is SyncOutcome.BUFFERED


def test_buffer_is_bounded_and_an_overflowed_buffer_forces_a_newer_snapshot() -> None:
    sync = DepthSync(L2Book("alpha", "BERA/USDT"), max_buffer=3)
    for i in range(101, 111):
        _ev(sync, i, i)
    assert sync.buffered == 3  # 108, 109, 110
    assert sync.on_snapshot(100, SNAP_BIDS, SNAP_ASKS, 0.0) is SyncOutcome.SNAPSHOT_TOO_OLD
    assert sync.on_snapshot(107, SNAP_BIDS, SNAP_ASKS, 0.0) is SyncOutcome.SYNCED
    assert sync.book.seq == 110


def test_random_stream_with_random_snapshot_point_rebuilds_the_reference_book() -> None:
    """Any snapshot taken mid-stream, bridged with the buffered tail, equals the full replay."""
    rng = random.Random(7)
    events: list[tuple[int, int, list[list[str]], list[list[str]]]] = []
    uid = 0
    for _ in range(300):
        n = rng.randint(1, 4)
        first = uid + 1
        uid += n
        bids = [[f"{rng.randint(90, 99) / 100:.2f}", str(rng.choice([0, 1, 2, 3]))] for _ in range(3)]
        asks = [[f"{rng.randint(101, 110) / 100:.2f}", str(rng.choice([0, 1, 2, 3]))] for _ in range(3)]
        events.append((first, uid, bids, asks))
    reference = L2Book("ref", "BERA/USDT")
    for _first, last, bids, asks in events:
        reference.apply_delta(bids, asks, last, 0.0)
    for cut in (0, 1, 57, 150, 299):
        snap = L2Book("snap", "BERA/USDT")
        for _first, last, bids, asks in events[:cut]:
            snap.apply_delta(bids, asks, last, 0.0)
        bids_snap, asks_snap = snap.top(1000)
        sync = _sync()
        start = max(0, cut - 5)  # the stream was opened a little before the snapshot was taken
        for first, last, bids, asks in events[start:]:
            _ev(sync, first, last, bids, asks)
        last_id = events[cut - 1][1] if cut else 0
        outcome = sync.on_snapshot(
            last_id, [[p, q] for p, q in bids_snap], [[p, q] for p, q in asks_snap], 0.0
        )
        assert outcome is SyncOutcome.SYNCED
        assert sync.book.top(1000) == reference.top(1000)
        assert sync.book.seq == reference.seq
