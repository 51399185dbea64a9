"""Supervised long-running tasks: a task that dies is logged and restarted with backoff.

A *critical* task (a feed, the order manager) that keeps dying — more than ``max_failures``
within ``failure_window_s`` — is given up on: the supervisor stops restarting it and calls
``on_give_up`` so the daemon takes its quotes off and reports itself unhealthy, instead of
looping silently. A non-critical task (the Redis mirror, state publishing) is restarted
forever with capped backoff: an outage of Redis must never stop quoting.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(__name__)

TaskFactory = Callable[[], Awaitable[None]]


class TaskState(enum.StrEnum):
    RUNNING = "running"
    BACKOFF = "backoff"  # died, waiting to be restarted
    FAILED = "failed"  # given up on
    DONE = "done"  # returned normally and was not to be restarted
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Backoff doubles from ``initial_backoff_s`` up to ``max_backoff_s``."""

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_failures: int = 5
    failure_window_s: float = 60.0
    # a task that ran this long since its last start is healthy again: backoff starts over
    stable_after_s: float = 30.0


@dataclass(slots=True)
class TaskStatus:
    """What status and health reporting see of one supervised task."""

    name: str
    critical: bool
    state: TaskState = TaskState.RUNNING
    restarts: int = 0
    last_error: str = ""
    failures: deque[float] = field(default_factory=deque)


GiveUpHandler = Callable[[str, BaseException], None]


@dataclass(slots=True)
class _Spec:
    name: str
    factory: TaskFactory
    critical: bool
    restart_on_return: bool
    status: TaskStatus
    runner: asyncio.Task[None] | None = None


class Supervisor:
    """Runs named coroutines, restarting them when they fail."""

    def __init__(
        self,
        policy: RestartPolicy | None = None,
        on_give_up: GiveUpHandler | None = None,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self._on_give_up = on_give_up
        self._specs: dict[str, _Spec] = {}
        self._stopping = False

    def add(
        self,
        name: str,
        factory: TaskFactory,
        *,
        critical: bool = True,
        restart_on_return: bool = True,
    ) -> None:
        """Register and start ``factory()`` under ``name`` (must run inside the event loop).

        ``restart_on_return``: a long-running task that returns has stopped doing its job,
        so by default that is treated like a failure; one-shot tasks pass False.
        """
        if name in self._specs:
            raise ValueError(f"a task named {name!r} is already supervised")
        spec = _Spec(name, factory, critical, restart_on_return, TaskStatus(name, critical))
        self._specs[name] = spec
        spec.runner = asyncio.create_task(self._run(spec), name=f"supervise:{name}")

    def statuses(self) -> list[TaskStatus]:
        return [spec.status for spec in self._specs.values()]

    @property
    def failed(self) -> list[str]:
        """Names of tasks given up on."""
        return [s.name for s in self.statuses() if s.state is TaskState.FAILED]

    async def _run(self, spec: _Spec) -> None:
        policy = self.policy
        backoff = policy.initial_backoff_s
        status = spec.status
        while not self._stopping:
            status.state = TaskState.RUNNING
            started = time.monotonic()
            error: BaseException
            try:
                await spec.factory()
            except asyncio.CancelledError:
                status.state = TaskState.STOPPED
                raise
            except Exception as exc:  # the point of a supervisor: log it with its traceback, restart
                error = exc
                log.error("task_died", task=spec.name, error=repr(exc), exc_info=exc)
            else:
                if not spec.restart_on_return:
                    status.state = TaskState.DONE
                    return
                error = RuntimeError(f"task {spec.name} returned while it should run forever")
                log.error("task_returned", task=spec.name)
            if self._stopping:
                return
            now = time.monotonic()
            if now - started >= policy.stable_after_s:
                backoff = policy.initial_backoff_s
            status.last_error = repr(error)
            status.failures.append(now)
            while status.failures and now - status.failures[0] > policy.failure_window_s:
                status.failures.popleft()
            if spec.critical and len(status.failures) > policy.max_failures:
                status.state = TaskState.FAILED
                log.critical(
                    "task_given_up", task=spec.name, failures=len(status.failures),
                    window_s=policy.failure_window_s, error=status.last_error,
                )
                if self._on_give_up is not None:
                    self._on_give_up(spec.name, error)
                return
            status.state = TaskState.BACKOFF
            status.restarts += 1
            log.warning("task_restarting", task=spec.name, in_s=round(backoff, 3), restarts=status.restarts)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, policy.max_backoff_s)

    async def restart(self, name: str) -> None:
        """Start a given-up task again (an operator's `resume` after fixing the cause)."""
        spec = self._specs[name]
        if spec.runner is not None and not spec.runner.done():
            return
        spec.status.failures.clear()
        spec.runner = asyncio.create_task(self._run(spec), name=f"supervise:{name}")

    async def stop(self, wait_s: float = 5.0) -> None:
        """Cancel every task and wait for them (bounded by ``wait_s``)."""
        self._stopping = True
        runners = [s.runner for s in self._specs.values() if s.runner is not None and not s.runner.done()]
        for runner in runners:
            runner.cancel()
        if runners:
            _, pending = await asyncio.wait(runners, timeout=wait_s)
            for runner in pending:
                log.warning("task_did_not_stop", task=runner.get_name())
        for spec in self._specs.values():
            if spec.status.state in (TaskState.RUNNING, TaskState.BACKOFF):
                spec.status.state = TaskState.STOPPED
