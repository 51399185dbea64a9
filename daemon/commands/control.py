"""``stackmm pause | resume | cancel-all``: a command through Redis, executed and acknowledged."""

from __future__ import annotations

import argparse
import asyncio
import sys

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from daemon.control import COMMANDS, AckTimeout, send_command
from daemon.status import TargetError, add_target_arguments, resolve_instance, resolve_redis_url

HELP = {
    "pause": "Stop quoting: the daemon cancels its orders and keeps them off until resume.",
    "resume": "Resume quoting after a pause (or after a task was given up on).",
    "cancel-all": "Cancel every open order of the instance now; quoting continues unless paused.",
}


async def _send(args: argparse.Namespace, command: str) -> int:
    client = aioredis.Redis.from_url(resolve_redis_url(args.redis_url, args.state_dir), decode_responses=True)
    try:
        keys = await resolve_instance(client, args.instance)
        ack = await send_command(client, keys, command, actor=args.actor, wait_s=args.timeout)
    finally:
        await client.aclose()
    verdict = "ok" if ack.ok else "REJECTED"
    print(f"{command} {keys.instance}: {verdict}: {ack.message}")
    return 0 if ack.ok else 1


def main(argv: list[str], command: str) -> int:
    if command not in COMMANDS:
        print(f"stackmm: {command!r} is not a control command ({', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(prog=f"stackmm {command}", description=HELP[command])
    add_target_arguments(p)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the acknowledgement")
    p.add_argument("--actor", help="who is sending (audit log); default user@host")
    args = p.parse_args(argv)
    try:
        return asyncio.run(_send(args, command))
    except AckTimeout as exc:
        print(f"stackmm {command}: {exc}", file=sys.stderr)
        return 1
    except TargetError as exc:
        print(f"stackmm {command}: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(f"stackmm {command}: cannot reach Redis: {exc}", file=sys.stderr)
        return 1
