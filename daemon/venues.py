"""Building a venue's live parts from its config: credentials, the ccxt config, the market-data
feed, and the record of what runs for it (:class:`VenueRuntime`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from ccxt.base.errors import BaseError as CcxtError

from connectors.execution.adapter import VenueAdapter
from connectors.execution.credentials import Credentials, load_credentials
from connectors.execution.errors import ExecutionError
from connectors.execution.order_manager import OrderManager
from daemon.logging import REDACTOR
from daemon.settings import SecretNotFound, read_secret
from strategies.book import L2Book
from strategies.clock import Clock
from strategies.config import VenueConfig
from strategies.types import Fill, Trade

# what talking to a venue may raise: our execution errors, ccxt's, and the network's
VENUE_ERRORS: tuple[type[BaseException], ...] = (ExecutionError, CcxtError, OSError, TimeoutError)

BINANCE_REST = "https://api.binance.com/api/v3"
BINANCE_WS = "wss://stream.binance.com:9443"


class Feed(Protocol):
    """A market-data feed: keeps ``books`` and calls back on books, trades and health."""

    books: dict[str, L2Book]

    async def run(self) -> None: ...

    async def close(self) -> None: ...


def resolve_credentials(
    venue: str, config: VenueConfig, environ: Mapping[str, str] | None = None
) -> Credentials:
    """API key and secret of a venue: the names in its config section, else the execution
    layer's conventional names (``STACKMM_<VENUE>_API_KEY`` ...). Registered for redaction."""
    env = dict(os.environ if environ is None else environ)
    names = config.credentials
    creds: Credentials
    if names.api_key_env or names.api_key_file or names.secret_env or names.secret_file:
        key = _secret(names.api_key_env, names.api_key_file, env)
        secret = _secret(names.secret_env, names.secret_file, env)
        creds = Credentials(api_key=key, secret=secret)
    else:
        creds = load_credentials(venue, env)
    REDACTOR.add(creds.api_key, creds.secret, *([creds.password] if creds.password else []))
    return creds


def _secret(env_name: str | None, file_name: str | None, env: dict[str, str]) -> str:
    if env_name and env.get(env_name):
        return env[env_name].strip()
    name = file_name or env_name
    if not name:
        raise SecretNotFound("a venue names its API key but not its secret (or the reverse)")
    # read_secret looks in the environment first: hide the variable when only a file is named
    scope = env if not file_name else {k: v for k, v in env.items() if k != file_name}
    return read_secret(name, scope)


def ccxt_config_for(config: VenueConfig, creds: Credentials) -> dict[str, Any]:
    """ccxt constructor config: URL overrides (paper venue, testnet) or the exchange's own."""
    if config.urls.rest and config.urls.ws:
        from connectors.paper.ccxt_config import ccxt_config

        return ccxt_config((config.urls.rest, config.urls.ws, creds.api_key, creds.secret))
    out: dict[str, Any] = dict(creds.ccxt_fields())
    if config.urls.rest:
        out["urls"] = {"api": {"public": config.urls.rest, "private": config.urls.rest}}
    return out


def build_feed(
    runtime: VenueRuntime,
    clock: Clock,
    on_book: Callable[[L2Book], None],
    on_trade: Callable[[Trade], None],
    on_health: Callable[[L2Book], None],
) -> Feed:
    """The native Binance feed for ``exchange: binance``, else ccxt pro's for that exchange."""
    vc = runtime.config
    if vc.exchange == "binance":
        from connectors.binance.feed import BinanceFeed

        return BinanceFeed(
            runtime.name, vc.symbols,
            ws_url=vc.urls.ws or BINANCE_WS, rest_url=vc.urls.rest or BINANCE_REST,
            clock=clock, stale_after_s=vc.stale_after_s,
            on_book=on_book, on_trade=on_trade, on_health=on_health,
            # Binance's diff stream also moves levels outside the snapshot: without a cap a
            # long-running book keeps every far level it ever saw
            max_depth=vc.book_depth,
        )
    from connectors.ccxt_feed import CcxtProFeed

    return CcxtProFeed(
        vc.exchange, ccxt_config_for(vc, runtime.credentials), runtime.name, vc.symbols,
        clock=clock, stale_after_s=vc.stale_after_s,
        on_book=on_book, on_trade=on_trade, on_health=on_health,
    )


@dataclass
class VenueRuntime:
    """One venue's live parts."""

    name: str
    config: VenueConfig
    credentials: Credentials
    feed: Feed | None = None
    orders: OrderManager | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    balances: dict[str, Decimal] = field(default_factory=dict)
    balances_as_of: float | None = None  # venue time of ``balances``
    # for risk limits: holdings when the manager first started (nothing of ours resting, so no
    # fill can race the snapshot) plus every fill since; later balance polls are not used here,
    # as a poll and a fill report in flight would count that fill twice
    opening: dict[str, Decimal] | None = None
    opening_ts: float = 0.0
    fill_deltas: dict[str, Decimal] = field(default_factory=dict)
    adapters: list[VenueAdapter] = field(default_factory=list)  # closed at exit

    def position(self, asset: str) -> Decimal:
        """Holdings of ``asset`` on this venue for the risk limits (opening + our fills)."""
        if self.opening is None:
            return Decimal(0)
        return self.opening.get(asset, Decimal(0)) + self.fill_deltas.get(asset, Decimal(0))

    def on_fill(self, fill: Fill) -> None:
        """One of our fills on this venue (for ``position``)."""
        if self.opening is None or fill.ts <= self.opening_ts:
            return  # already in the opening snapshot (a fill from before this run)
        base, _, quote = fill.symbol.partition("/")
        sign = fill.side.sign
        deltas = self.fill_deltas
        deltas[base] = deltas.get(base, Decimal(0)) + sign * fill.qty
        deltas[quote] = deltas.get(quote, Decimal(0)) - sign * fill.price * fill.qty
        if fill.fee:
            deltas[fill.fee_asset] = deltas.get(fill.fee_asset, Decimal(0)) - fill.fee
