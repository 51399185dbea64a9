"""The order state machine: an explicit table; impossible transitions raise."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal

import pytest

from connectors.execution.client_ids import (
    MAX_LEN,
    ClientIdFactory,
    instance_prefix,
    is_own,
    validate_prefix,
)
from connectors.execution.orders import TRANSITIONS, IllegalTransition, OrderRecord, OrderState
from strategies.types import Side


def _order(state: OrderState = OrderState.PENDING_NEW) -> OrderRecord:
    return OrderRecord(
        "mm-tob0b-1", "alpha", "BERA/USDT", Side.BUY, Decimal("2.5"), Decimal("10"), "tob", 0, state
    )


def test_every_state_has_a_row_and_terminal_states_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(OrderState)
    for state in (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED):
        assert state.is_terminal
        assert TRANSITIONS[state] == frozenset()


@pytest.mark.parametrize(
    "path",
    [
        [OrderState.OPEN, OrderState.PARTIALLY_FILLED, OrderState.PARTIALLY_FILLED, OrderState.FILLED],
        [OrderState.OPEN, OrderState.PENDING_CANCEL, OrderState.CANCELLED],
        [OrderState.OPEN, OrderState.PENDING_CANCEL, OrderState.PENDING_CANCEL, OrderState.FILLED],
        [OrderState.UNKNOWN, OrderState.OPEN, OrderState.PENDING_CANCEL, OrderState.CANCELLED],
        [OrderState.UNKNOWN, OrderState.REJECTED],
        [OrderState.REJECTED],
        [OrderState.PARTIALLY_FILLED, OrderState.PENDING_CANCEL, OrderState.CANCELLED],
    ],
)
def test_real_order_lives_follow_the_table(path: list[OrderState]) -> None:
    order = _order()
    for i, state in enumerate(path):
        order.transition(state, ts=float(i))
    assert order.state is path[-1]
    assert order.history == [OrderState.PENDING_NEW, *path[:-1]]
    assert order.updated_ts == float(len(path) - 1)


@pytest.mark.parametrize(
    ("start", "bad"),
    [
        (OrderState.FILLED, OrderState.OPEN),
        (OrderState.CANCELLED, OrderState.OPEN),
        (OrderState.REJECTED, OrderState.PENDING_CANCEL),
        (OrderState.OPEN, OrderState.PENDING_NEW),
        (OrderState.OPEN, OrderState.REJECTED),
        (OrderState.OPEN, OrderState.UNKNOWN),
        (OrderState.PENDING_CANCEL, OrderState.OPEN),
        (OrderState.PARTIALLY_FILLED, OrderState.OPEN),
        (OrderState.PENDING_NEW, OrderState.PENDING_CANCEL),
    ],
)
def test_impossible_transition_raises_and_leaves_the_order_alone(start: OrderState, bad: OrderState) -> None:
    order = _order(start)
    with pytest.raises(IllegalTransition) as err:
        order.transition(bad, ts=1.0)
    assert order.state is start
    assert err.value.old is start and err.value.new is bad


def test_filled_quantity_never_goes_back_and_never_exceeds_size() -> None:
    order = _order(OrderState.OPEN)
    order.note_filled(Decimal("4"))
    order.note_filled(Decimal("3"))  # an older report arriving late
    assert order.filled == Decimal("4")
    assert order.remaining == Decimal("6")
    order.note_filled(Decimal("12"))
    assert order.filled == Decimal("10") and order.remaining == 0


def test_client_ids_carry_the_prefix_fit_binance_and_never_repeat_across_restarts() -> None:
    first = ClientIdFactory("stackmm_demo", epoch_ms=1_763_700_000_000)
    second = ClientIdFactory("stackmm_demo", epoch_ms=1_763_700_000_001)  # a restart 1 ms later
    ids = [first.next("passive_long_name", Side.SELL, level) for level in range(200)]
    ids += [second.next("passive_long_name", Side.SELL, level) for level in range(200)]
    assert len(set(ids)) == len(ids)
    for cid in ids:
        assert len(cid) <= MAX_LEN
        assert cid.startswith("stackmm_demo-")
        assert all(c.isalnum() or c in "-_" for c in cid)
        assert is_own("stackmm_demo", cid)
    assert not is_own("stackmm", ids[0])  # a shorter prefix does not claim another instance's ids
    assert not is_own("stackmm_demo", None)


@pytest.mark.parametrize("bad", ["", "has-dash", "x" * 13, "spa ce"])
def test_prefix_that_could_not_mark_ids_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_prefix(bad)


@pytest.mark.parametrize(
    "instance", ["bera-mm-prod-eu-west-1", "a", "stackmm", "x" * 200, "mm.béra/usdt 2", "-", "___"]
)
def test_any_instance_name_gives_a_short_prefix_that_can_mark_ids(instance: str) -> None:
    prefix = instance_prefix(instance)
    assert validate_prefix(prefix) == prefix
    assert re.fullmatch(r"[A-Za-z0-9_]{1,7}_[0-9a-z]{4}", prefix), prefix
    cid = ClientIdFactory(prefix, epoch_ms=1_763_700_000_000).next("passive", Side.BUY, 3)
    assert len(cid) <= MAX_LEN and is_own(prefix, cid)


def test_instance_names_sharing_their_first_twelve_characters_get_different_prefixes() -> None:
    names = [f"bera-mm-prod-{suffix}" for suffix in ("eu", "us", "asia", "eu-2", "eu_2")]
    names += ["bera-mm-prod", "bera_mm_prod", "bera.mm.prod"]  # differ only where the stem blurs
    assert all(name.startswith("bera") for name in names)
    prefixes = [instance_prefix(n) for n in names]
    assert len(set(prefixes)) == len(names), dict(zip(names, prefixes, strict=True))
    # ... and neither claims the other's ids.
    first, second = prefixes[0], prefixes[1]
    assert not is_own(first, f"{second}-tob0b-1") and not is_own(second, f"{first}-tob0b-1")


def test_instance_prefix_is_stable_across_processes() -> None:
    # Python's str hash is salted per process; the prefix must not be.
    code = (
        "from connectors.execution.client_ids import instance_prefix\n"
        "print(instance_prefix('bera-mm-prod-eu'))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert other.stdout.strip() == instance_prefix("bera-mm-prod-eu")
    assert instance_prefix("bera-mm-prod-eu") == "bera_mm_" + instance_prefix("bera-mm-prod-eu")[-4:]


def test_an_empty_instance_name_is_refused() -> None:
    with pytest.raises(ValueError):
        instance_prefix("")
