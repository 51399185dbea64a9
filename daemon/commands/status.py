"""``stackmm status``: an instance's live state from Redis, as text, JSON, or refreshed in place."""

from __future__ import annotations

import argparse
import asyncio
import sys

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from daemon.status import (
    TargetError,
    add_target_arguments,
    read_status,
    render_json,
    render_text,
    resolve_instance,
    resolve_redis_url,
)

CLEAR = "\x1b[H\x1b[2J"
NOT_RUNNING = 3  # like `systemctl status`: the instance is not (visibly) running


def parser(command: str = "status") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"stackmm {command}", description="Show an instance's live state from Redis."
    )
    add_target_arguments(p)
    p.add_argument("--json", action="store_true", help="machine-readable JSON")
    p.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between --watch refreshes")
    return p


async def _status(args: argparse.Namespace) -> int:
    client = aioredis.Redis.from_url(resolve_redis_url(args.redis_url, args.state_dir), decode_responses=True)
    try:
        keys = await resolve_instance(client, args.instance)
        while True:
            snap = await read_status(client, keys)
            text = render_json(snap) if args.json else render_text(snap)
            if args.watch and sys.stdout.isatty():
                sys.stdout.write(CLEAR)
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            if not args.watch:
                return 0 if snap.alive else NOT_RUNNING
            await asyncio.sleep(args.interval)  # a refresh period, not synchronisation
    finally:
        await client.aclose()


def main(argv: list[str], command: str = "status") -> int:
    args = parser(command).parse_args(argv)
    try:
        return asyncio.run(_status(args))
    except KeyboardInterrupt:
        return 0
    except TargetError as exc:
        print(f"stackmm {command}: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(f"stackmm {command}: cannot read Redis: {exc}", file=sys.stderr)
        return 1
