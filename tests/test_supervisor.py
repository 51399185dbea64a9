"""Supervised tasks: a dying task is logged and restarted with backoff; one that keeps dying is given up."""

from __future__ import annotations

import asyncio

import structlog

from daemon.supervisor import RestartPolicy, Supervisor, TaskState

FAST = RestartPolicy(initial_backoff_s=0.001, max_backoff_s=0.004, max_failures=3, failure_window_s=60)


async def test_a_task_that_dies_is_restarted_and_its_traceback_logged() -> None:
    attempts = 0
    recovered = asyncio.Event()

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ValueError(f"boom {attempts}")
        recovered.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(FAST)
    with structlog.testing.capture_logs() as logs:
        supervisor.add("feed:alpha", flaky)
        await asyncio.wait_for(recovered.wait(), 5)
    [status] = supervisor.statuses()
    assert status.state is TaskState.RUNNING
    assert status.restarts == 2
    assert "boom 2" in status.last_error
    died = [e for e in logs if e["event"] == "task_died"]
    assert len(died) == 2 and isinstance(died[0]["exc_info"], ValueError)
    await supervisor.stop()
    assert supervisor.statuses()[0].state is TaskState.STOPPED


async def test_a_critical_task_that_keeps_dying_is_given_up_and_reported() -> None:
    given_up: asyncio.Future[tuple[str, BaseException]] = asyncio.get_running_loop().create_future()

    async def broken() -> None:
        raise ConnectionError("venue down")

    supervisor = Supervisor(FAST, on_give_up=lambda name, exc: given_up.set_result((name, exc)))
    supervisor.add("orders:alpha", broken)
    name, exc = await asyncio.wait_for(given_up, 5)
    assert name == "orders:alpha" and isinstance(exc, ConnectionError)
    assert supervisor.failed == ["orders:alpha"]
    assert supervisor.statuses()[0].restarts == FAST.max_failures
    await supervisor.stop()


async def test_a_non_critical_task_is_restarted_forever() -> None:
    attempts = 0
    enough = asyncio.Event()

    async def mirror() -> None:
        nonlocal attempts
        attempts += 1
        if attempts > 3 * FAST.max_failures:
            enough.set()
            await asyncio.Event().wait()
        raise OSError("redis down")

    supervisor = Supervisor(FAST, on_give_up=lambda name, exc: (_ for _ in ()).throw(AssertionError(name)))
    supervisor.add("mirror", mirror, critical=False)
    await asyncio.wait_for(enough.wait(), 5)
    assert supervisor.failed == []
    await supervisor.stop()


async def test_a_returning_task_counts_as_a_failure_unless_it_is_one_shot() -> None:
    runs = {"loop": 0, "once": 0}
    second_run = asyncio.Event()

    async def loop_task() -> None:
        runs["loop"] += 1
        if runs["loop"] == 2:
            second_run.set()
            await asyncio.Event().wait()

    async def once() -> None:
        runs["once"] += 1

    supervisor = Supervisor(FAST)
    supervisor.add("loop", loop_task)
    supervisor.add("once", once, restart_on_return=False)
    await asyncio.wait_for(second_run.wait(), 5)
    states = {s.name: s.state for s in supervisor.statuses()}
    assert states["once"] is TaskState.DONE and runs["once"] == 1
    await supervisor.stop()


async def test_restart_brings_back_a_given_up_task() -> None:
    healthy = False
    back = asyncio.Event()
    given_up = asyncio.Event()

    async def task() -> None:
        if not healthy:
            raise RuntimeError("still broken")
        back.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(FAST, on_give_up=lambda name, exc: given_up.set())
    supervisor.add("feed:beta", task)
    await asyncio.wait_for(given_up.wait(), 5)
    healthy = True
    await supervisor.restart("feed:beta")
    await asyncio.wait_for(back.wait(), 5)
    assert supervisor.failed == []
    await supervisor.stop()


def test_duplicate_names_are_refused() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    async def scenario() -> None:
        supervisor = Supervisor(FAST)
        supervisor.add("x", forever)
        try:
            supervisor.add("x", forever)
        except ValueError as exc:
            assert "already supervised" in str(exc)
        else:
            raise AssertionError("duplicate accepted")
        finally:
            await supervisor.stop()

    asyncio.run(scenario())
