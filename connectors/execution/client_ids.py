"""Client order ids: ``<instance prefix>-<slot tag>-<epoch><counter>``.

The prefix lets a restarted instance find its own orders among everything on the account;
the slot tag makes a venue's order list readable; the epoch (milliseconds since 2020 at
start, base 36) makes ids unique across restarts without persisting a counter.
:func:`instance_prefix` turns any instance name into its prefix.
"""

from __future__ import annotations

import hashlib
import re

from strategies.types import Side

MAX_LEN = 36  # Binance's limit for newClientOrderId
MAX_PREFIX_LEN = 12
_PREFIX_STEM_LEN = 7
_PREFIX_HASH_LEN = 4
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_]{1,12}$")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_EPOCH_2020_MS = 1_577_836_800_000
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(n: int) -> str:
    """``n`` in base 36, lower case (digits then letters)."""
    if n < 0:
        raise ValueError("base36 of a negative number")
    if n == 0:
        return "0"
    out: list[str] = []
    while n:
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
    return "".join(reversed(out))


def instance_prefix(instance: str) -> str:
    """The client order id prefix of an instance: short, unambiguous, stable.

    Instance names may be long and contain ``-`` (which separates the parts of a client id),
    so the prefix is up to 7 characters of the name with anything outside ``[A-Za-z0-9_]``
    replaced by ``_``, then ``_`` and 4 base-36 characters of a SHA-256 of the *full* name:
    ``bera-mm-prod`` -> ``bera_mm_xxxx``. Two names that share their first characters, or
    differ only in characters the stem cannot hold, still get different prefixes (about one
    chance in 1.7 million of a clash), and a name always maps to the same prefix, in any
    process on any machine (no salted ``hash()``), so a restart finds its own orders.
    """
    if not instance:
        raise ValueError("an instance name is needed for its client order id prefix")
    stem = _TAG_UNSAFE.sub("_", instance)[:_PREFIX_STEM_LEN]
    digest = int.from_bytes(hashlib.sha256(instance.encode("utf-8")).digest()[:8], "big")
    tail = base36(digest % 36**_PREFIX_HASH_LEN).rjust(_PREFIX_HASH_LEN, "0")
    return validate_prefix(f"{stem}_{tail}")


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start client ids, else raise ValueError saying why."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(
            f"instance prefix {prefix!r} must be 1-{MAX_PREFIX_LEN} characters of [A-Za-z0-9_] "
            "(no '-': it separates the parts of a client order id)"
        )
    return prefix


def slot_tag(line_id: str, side: Side, level: int) -> str:
    """A short readable tag for a ladder slot, e.g. ``tob0b`` (line ``tob``, level 0, bid)."""
    line = _TAG_UNSAFE.sub("", line_id)[:5] or "x"
    return f"{line}{base36(level)[:2]}{'b' if side is Side.BUY else 'a'}"


class ClientIdFactory:
    """Makes unique client order ids for one instance run."""

    def __init__(self, prefix: str, epoch_ms: int) -> None:
        self.prefix = validate_prefix(prefix)
        self._epoch = base36(max(epoch_ms - _EPOCH_2020_MS, 0))
        self._counter = 0

    def next(self, line_id: str, side: Side, level: int) -> str:
        """A fresh client id for an order of this slot."""
        self._counter += 1
        tail = f"{self._epoch}{base36(self._counter)}"
        tag = slot_tag(line_id, side, level)
        room = MAX_LEN - len(self.prefix) - len(tail) - 2
        return f"{self.prefix}-{tag[: max(room, 1)]}-{tail}"

    def owns(self, client_order_id: str | None) -> bool:
        """True if the id carries this instance's prefix."""
        return is_own(self.prefix, client_order_id)


def is_own(prefix: str, client_order_id: str | None) -> bool:
    """True if the id was made by an instance with this prefix."""
    return bool(client_order_id) and str(client_order_id).startswith(prefix + "-")
