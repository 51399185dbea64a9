"""``make demo``: the whole product on one machine, for a first look.

Starts a private Redis, the paper venues of ``config/paper/demo.yaml`` (``stackmm
paper-venue``) and the daemon on ``config/bera-usdt.yaml`` (``stackmm run``), shows the live
status until Ctrl-C or ``$DEMO_SECONDS`` elapse, then stops the daemon (which cancels its
orders), checks on every venue that none of our orders is left, prints a summary and stops
everything else. Every child runs in its own process group and is killed on every exit path,
so nothing is left running.

    python -m daemon.demo [--seconds 60] [--config config/bera-usdt.yaml]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import redis.asyncio as aioredis

from daemon.config_loader import ConfigError, load_config
from daemon.redis_keys import RedisKeys
from daemon.redis_server import RedisServer
from daemon.status import read_status, render_text
from daemon.store import Store
from strategies.config import StrategyConfig

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "bera-usdt.yaml"
DEFAULT_SCENARIO = ROOT / "config" / "paper" / "demo.yaml"
CLEAR = "\x1b[H\x1b[2J"
READY_TIMEOUT_S = 90.0
DAEMON_STOP_TIMEOUT_S = 30.0


@dataclass
class Child:
    """A child process in its own process group, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float) -> int | None:
        """SIGTERM the group, wait, then SIGKILL whatever is left. Returns the exit code."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  {self.name} did not stop within {timeout:.0f}s: killing it", file=sys.stderr)
        self.signal(signal.SIGKILL)  # stragglers in the group (none expected)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        return self.process.returncode

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Demo:
    config_path: Path
    seconds: float
    workdir: Path
    children: list[Child] = field(default_factory=list)
    redis: RedisServer | None = None

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                start_new_session=True,  # own group: Ctrl-C reaches only us; we stop them in order
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def kill_all(self) -> None:
        """Last resort (atexit, errors): nothing started here outlives the demo."""
        for child in reversed(self.children):
            if child.alive():
                child.stop(5)
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def _venue_ports(config: StrategyConfig) -> list[int]:
    ports = []
    for venue in config.venues.values():
        url = venue.urls.rest or ""
        parsed = urlparse(url)
        if parsed.hostname not in ("127.0.0.1", "localhost") or parsed.port is None:
            raise SystemExit(f"demo: venue URL {url!r} is not a local paper venue")
        ports.append(parsed.port)
    return sorted(ports)


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def _demo_credentials(scenario: Path) -> dict[str, str]:
    """The paper venues' local test keys, under the env names the demo config expects."""
    from connectors.paper.scenario import load_scenario

    env: dict[str, str] = {}
    for venue in load_scenario(scenario).venues:
        account = venue.accounts[0]
        upper = venue.name.upper()
        env[f"STACKMM_{upper}_API_KEY"] = account.api_key
        env[f"STACKMM_{upper}_SECRET"] = account.secret
    return env


async def _wait_ready(sock: socket.socket, daemon: Child, deadline: float) -> bool:
    """Wait for READY=1 on our stand-in for systemd's notify socket."""
    loop = asyncio.get_running_loop()
    while time.monotonic() < deadline and daemon.alive():
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout=1.0)
        except TimeoutError:
            continue
        if b"READY=1" in data.split(b"\n"):
            return True
    return False


async def _drain(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await loop.sock_recv(sock, 4096)


async def _open_orders_on_venues(config: StrategyConfig, credentials: dict[str, str]) -> dict[str, int]:
    """Ask every venue (through ccxt, as any client would) for our open orders."""
    import ccxt.async_support as ccxt_async

    from connectors.paper.ccxt_config import ccxt_config

    counts: dict[str, int] = {}
    for name, venue in config.venues.items():
        assert venue.urls.rest and venue.urls.ws
        upper = name.upper()
        exchange = ccxt_async.binance(ccxt_config((
            venue.urls.rest, venue.urls.ws,
            credentials[f"STACKMM_{upper}_API_KEY"], credentials[f"STACKMM_{upper}_SECRET"],
        )))
        try:
            total = 0
            for symbol in venue.symbols:
                total += len(await exchange.fetch_open_orders(symbol))
            counts[name] = total
        finally:
            await exchange.close()
    return counts


def _summary(fills_by_venue: dict[str, list[Any]], pnl: dict[str, Any], open_orders: dict[str, int],
             elapsed: float, daemon_code: int | None) -> str:
    lines = ["", "=" * 72, f"stackmm demo summary ({elapsed:.0f} s)", "=" * 72]
    total = sum(len(f) for f in fills_by_venue.values())
    lines.append(f"fills: {total}")
    for venue, fills in sorted(fills_by_venue.items()):
        sides: Counter[str] = Counter(f.side.value for f in fills)
        volume: dict[str, Decimal] = {}
        for f in fills:
            quote = f.symbol.partition("/")[2]
            volume[quote] = volume.get(quote, Decimal(0)) + f.price * f.qty
        traded = " + ".join(f"{float(v):.6g} {q}" for q, v in sorted(volume.items())) or "-"
        lines.append(f"  {venue:<8} {len(fills):>4} fills  ({sides['buy']} buys, {sides['sell']} sells)"
                     f"  volume {traded}")
    if pnl:
        lines.append(f"position change {pnl.get('position', 0):+.2f}  fees {pnl.get('fees_quote', 0):.4f}"
                     f"  PnL {pnl.get('pnl_quote') or 0:+.4f} {pnl.get('quote', '')}"
                     f" (marked at {float(pnl.get('mark') or 0):.6g})")
    left = sum(open_orders.values())
    per_venue = ", ".join(f"{v} {n}" for v, n in sorted(open_orders.items()))
    verdict = "OK" if left == 0 else "NOT CLEAN"
    lines.append(f"open orders left on the venues after stop: {left} ({per_venue})  {verdict}")
    lines.append(f"daemon exit code: {daemon_code}")
    return "\n".join(lines)


async def run_demo(demo: Demo) -> int:
    config = load_config(demo.config_path)
    ports = _venue_ports(config)
    busy = [p for p in ports if _port_open(p)]
    if busy:
        print(f"demo: ports {busy} are in use (another demo or paper venue running?)", file=sys.stderr)
        return 1
    python = sys.executable
    credentials = _demo_credentials(DEFAULT_SCENARIO)

    print(f"demo: working directory {demo.workdir}")
    demo.redis = RedisServer(directory=demo.workdir / "redis")
    await asyncio.to_thread(demo.redis.start)
    print(f"demo: Redis on {demo.redis.url}")

    paper = demo.spawn("paper-venue", [
        python, "-m", "daemon.cli", "paper-venue", "--scenario", str(DEFAULT_SCENARIO),
        "--port", str(ports[0]), "--quiet",
    ], dict(os.environ))
    deadline = time.monotonic() + 30
    while not all(_port_open(p) for p in ports):
        if not paper.alive() or time.monotonic() > deadline:
            print(f"demo: the paper venue did not start:\n{paper.tail()}", file=sys.stderr)
            return 1
        await asyncio.sleep(0.1)  # a launcher polling a port, not a test
    print(f"demo: paper venues on ports {', '.join(map(str, ports))}")

    notify_path = demo.workdir / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.setblocking(False)
    env = dict(os.environ)
    env.update(credentials)
    env.update({
        "STACKMM_REDIS_URL": demo.redis.url,
        "STACKMM_STATE_DIR": str(demo.workdir / "state"),
        "STACKMM_LOG_FORMAT": "json",
        "NOTIFY_SOCKET": str(notify_path),
    })
    env.pop("STACKMM_INSTANCE", None)
    daemon = demo.spawn("daemon", [python, "-m", "daemon.cli", "run", "--config", str(demo.config_path)], env)
    print("demo: daemon starting (syncing books, cancelling leftovers, placing quotes) ...")
    started = time.monotonic()
    if not await _wait_ready(notify, daemon, started + READY_TIMEOUT_S):
        print(f"demo: the daemon did not become ready:\n{daemon.tail()}", file=sys.stderr)
        daemon.stop(DAEMON_STOP_TIMEOUT_S)
        return 1
    # keep reading the daemon's notifications until it has stopped, as systemd would: a closed
    # socket makes every later STATUS= line fail on the daemon's side
    drain = asyncio.create_task(_drain(notify))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    keys = RedisKeys(config.instance)
    client = aioredis.Redis.from_url(demo.redis.url, decode_responses=True)
    live_from = time.monotonic()
    tty = sys.stdout.isatty()
    try:
        while not stop.is_set() and daemon.alive() and paper.alive():
            elapsed = time.monotonic() - live_from
            if demo.seconds and elapsed >= demo.seconds:
                break
            snap = await read_status(client, keys)
            limit = f" of {demo.seconds:.0f}" if demo.seconds else ""
            header = f"stackmm demo — {elapsed:4.0f} s{limit} — Ctrl-C to stop"
            frame = f"{header}\n{'-' * len(header)}\n{render_text(snap)}\n"
            sys.stdout.write((CLEAR if tty else "\n") + frame)
            sys.stdout.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        pnl = (await read_status(client, keys)).pnl
    finally:
        await client.aclose()
    if not daemon.alive():
        print(f"demo: the daemon exited early:\n{daemon.tail()}", file=sys.stderr)
    if not paper.alive():
        print(f"demo: the paper venue exited early:\n{paper.tail()}", file=sys.stderr)

    print("\ndemo: stopping the daemon (it cancels all its orders) ...")
    daemon_code = await asyncio.to_thread(daemon.stop, DAEMON_STOP_TIMEOUT_S)
    drain.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await drain
    notify.close()
    open_orders: dict[str, int] = {}
    if paper.alive():
        open_orders = await _open_orders_on_venues(config, credentials)
    store = await Store.open(demo.workdir / "state" / f"{config.instance}.sqlite")
    try:
        fills_by_venue: dict[str, list[Any]] = {name: [] for name in config.venues}
        for fill in await store.fills():
            fills_by_venue.setdefault(fill.venue, []).append(fill)
    finally:
        await store.close()
    print("demo: stopping the paper venues and Redis ...")
    await asyncio.to_thread(paper.stop, 10)
    elapsed = time.monotonic() - live_from
    print(_summary(fills_by_venue, pnl, open_orders, elapsed, daemon_code))
    print(f"logs: {demo.workdir}/daemon.log, {demo.workdir}/paper-venue.log")
    clean = daemon_code == 0 and bool(open_orders) and sum(open_orders.values()) == 0
    return 0 if clean else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daemon.demo", description=__doc__.split("\n\n")[0])
    default_seconds = float(os.environ.get("DEMO_SECONDS", "0") or 0)
    parser.add_argument("--seconds", type=float, default=default_seconds,
                        help="seconds of live view (default $DEMO_SECONDS; 0 = until Ctrl-C)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--workdir", type=Path, help="logs, state and Redis data (default: a temp dir)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="stackmm-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(args.config, args.seconds, workdir)
    atexit.register(demo.kill_all)
    try:
        return asyncio.run(run_demo(demo))
    except ConfigError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the live view installed its handler
        print("\ndemo: interrupted", file=sys.stderr)
        return 130
    finally:
        demo.kill_all()


if __name__ == "__main__":
    sys.exit(main())
