"""``stackmm run --config FILE``: the daemon, in the foreground, until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import signal
import sys
from pathlib import Path

import structlog
from pydantic import ValidationError

from daemon.logging import configure_logging
from daemon.settings import Settings


def parser(command: str = "run") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"stackmm {command}",
        description="Run the market-making daemon with a strategy config. Settings come from "
        "STACKMM_* environment variables or .env (see deploy/stackmm.env.example).",
    )
    p.add_argument("--config", required=True, type=Path, help="strategy YAML, e.g. config/bera-usdt.yaml")
    p.add_argument("--instance", help="instance name (default: $STACKMM_INSTANCE, else the config's)")
    p.add_argument("--state-dir", type=Path, help="state directory (default: $STACKMM_STATE_DIR or ./state)")
    p.add_argument("--redis-url", help="Redis URL (default: $STACKMM_REDIS_URL, else embedded Redis)")
    return p


def main(argv: list[str], command: str = "run") -> int:
    args = parser(command).parse_args(argv)
    given = {"instance": args.instance, "state_dir": args.state_dir, "redis_url": args.redis_url}
    overrides = {key: value for key, value in given.items() if value is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"stackmm {command}: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.resolved_log_format(), settings.log_level)
    # `kill -USR1 <pid>` dumps every thread's stack to stderr: for a daemon that seems stuck
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    from daemon.app import Daemon  # after logging is configured: imports log at module level

    daemon = Daemon(args.config, settings)
    try:
        import uvloop

        code: int = uvloop.run(daemon.run())
        return code
    except ImportError:
        structlog.get_logger(__name__).warning("uvloop_unavailable", fallback="asyncio")
        return asyncio.run(daemon.run())
