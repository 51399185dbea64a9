"""``stackmm inspect``: every Redis key of an instance, what it holds, and its live value."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from daemon.redis_keys import INSTANCES, RedisKeys
from daemon.status import TargetError, add_target_arguments, resolve_instance, resolve_redis_url

MAX_VALUE = 160  # characters of a value shown; the layout matters more than long JSON


def describe(key: str, keys: RedisKeys) -> str:
    """The documented meaning of ``key`` (from the docstrings of ``RedisKeys``)."""
    rest = key[len(keys.prefix) + 1:]
    head = rest.split(":", 1)[0]
    doc: str | None
    if rest.startswith("book:agg:"):
        doc = RedisKeys.aggregated_book.__doc__
    elif head == "book":
        doc = RedisKeys.book.__doc__
    elif head in ("trades", "orders", "line"):
        doc = getattr(RedisKeys, head).__doc__
    else:
        attr = getattr(RedisKeys, head.replace("-", "_"), None)
        doc = getattr(attr, "__doc__", None) if isinstance(attr, property) else None
    return (doc or "").strip().splitlines()[0] if doc else ""


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


async def _value_lines(client: aioredis.Redis, key: str, kind: str) -> list[str]:
    if kind == "hash":
        fields: dict[Any, Any] = await client.hgetall(key)  # type: ignore[misc]
        return [f"    {f} = {_short(v)}" for f, v in sorted(fields.items())]
    if kind == "set":
        return [f"    {_short(sorted(await client.smembers(key)))}"]  # type: ignore[misc]
    if kind == "stream":
        length = await client.xlen(key)
        last: Any = await client.xrevrange(key, count=2)
        return [f"    length {length}"] + [f"    {entry_id} {_short(fields)}" for entry_id, fields in last]
    if kind == "string":
        return [f"    {_short(await client.get(key))}"]
    if kind == "list":
        return [f"    {_short(await client.lrange(key, 0, 4))}"]  # type: ignore[misc]
    if kind == "zset":
        return [f"    {_short(await client.zrange(key, 0, 4, withscores=True))}"]
    return []


async def _inspect(args: argparse.Namespace) -> int:
    client = aioredis.Redis.from_url(resolve_redis_url(args.redis_url, args.state_dir), decode_responses=True)
    try:
        keys = await resolve_instance(client, args.instance)
        print(f"{INSTANCES}  (set: instance names)")
        print(f"    {sorted(await client.smembers(INSTANCES))}")  # type: ignore[misc]
        print(f"\n{keys.prefix}:*  (instance {keys.instance})")
        print(f"  {keys.book_updates}  ({describe(keys.book_updates, keys)})")
        found = sorted([str(k) async for k in client.scan_iter(match=f"{keys.prefix}:*", count=500)])
        for key in found:
            kind = str(await client.type(key))
            meaning = describe(key, keys)
            print(f"  {key}  ({kind}{': ' + meaning if meaning else ''})")
            if not args.keys_only:
                for line in await _value_lines(client, key, kind):
                    print(line)
        if not found:
            print("  (no keys: the instance has not published yet)")
    finally:
        await client.aclose()
    return 0


def main(argv: list[str], command: str = "inspect") -> int:
    p = argparse.ArgumentParser(
        prog=f"stackmm {command}", description="Print an instance's Redis keys with live values."
    )
    add_target_arguments(p)
    p.add_argument("--keys-only", action="store_true", help="names and types, no values")
    args = p.parse_args(argv)
    try:
        return asyncio.run(_inspect(args))
    except TargetError as exc:
        print(f"stackmm {command}: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(f"stackmm {command}: cannot read Redis: {exc}", file=sys.stderr)
        return 1
