"""The paper-venue scenario: which venues, markets, accounts, market simulation and faults.

A scenario is YAML (``config/paper/*.yaml``) turned into typed models once, here. Errors name
the file and the key (``config/paper/demo.yaml: venues[1].accounts[0].api_key: Field required``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.paper.engine import SymbolSpec
from connectors.paper.faults import FaultSettings
from connectors.paper.market import FairValueParams, ParticipantParams, VenueNoiseParams
from connectors.paper.weights import DEFAULT_WEIGHT_LIMIT


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key."""


class MarketSettings(BaseModel):
    """One market (same rules on every venue that lists it)."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(description='ccxt unified symbol, "BERA/USDT"')
    tick: Decimal = Field(gt=0)
    step: Decimal = Field(gt=0)
    min_qty: Decimal = Field(default=Decimal(0), ge=0)
    min_notional: Decimal = Field(default=Decimal(0), ge=0)

    @field_validator("symbol")
    @classmethod
    def _unified(cls, value: str) -> str:
        base, sep, quote = value.partition("/")
        if not sep or not base or not quote or not (base + quote).isalnum():
            raise ValueError(f'{value!r} is not a unified symbol like "BERA/USDT"')
        return value.upper()

    def spec(self) -> SymbolSpec:
        base, _, quote = self.symbol.partition("/")
        return SymbolSpec(self.symbol, base, quote, self.tick, self.step, self.min_qty, self.min_notional)


class AccountSettings(BaseModel):
    """A trading account on a venue and its API key (local test keys only)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    api_key: str = Field(min_length=1)
    secret: str = Field(min_length=1)
    balances: dict[str, Decimal] = Field(default_factory=dict, description="starting free balance per asset")

    @field_validator("balances")
    @classmethod
    def _positive(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for asset, amount in value.items():
            if amount < 0:
                raise ValueError(f"balance of {asset} is negative")
        return {asset.upper(): amount for asset, amount in value.items()}


class StreamSettings(BaseModel):
    """Batching of the diff-depth streams (tests shorten them)."""

    model_config = ConfigDict(extra="forbid")

    depth_interval_ms: int = Field(default=1000, gt=0, description="<symbol>@depth batching")
    depth_fast_interval_ms: int = Field(default=100, gt=0, description="<symbol>@depth@100ms batching")


class VenueSettings(BaseModel):
    """One paper venue."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    port: int | None = Field(
        default=None, ge=0, le=65535, description="fixed port; default base port + index"
    )
    symbols: list[str] | None = Field(default=None, description="markets listed here; default all")
    maker_fee: Decimal = Field(default=Decimal("0.001"), ge=0)
    taker_fee: Decimal = Field(default=Decimal("0.001"), ge=0)
    accounts: list[AccountSettings] = Field(min_length=1)
    participants: ParticipantParams = Field(default_factory=ParticipantParams)
    participants_by_symbol: dict[str, ParticipantParams] = Field(default_factory=dict)
    noise: VenueNoiseParams = Field(default_factory=VenueNoiseParams)
    weight_limit_per_minute: int = Field(default=DEFAULT_WEIGHT_LIMIT, gt=0)
    streams: StreamSettings = Field(default_factory=StreamSettings)
    faults: FaultSettings = Field(default_factory=FaultSettings)

    @model_validator(mode="after")
    def _unique_keys(self) -> VenueSettings:
        names = [a.name for a in self.accounts]
        keys = [a.api_key for a in self.accounts]
        if len(set(names)) != len(names):
            raise ValueError("account names must be unique on a venue")
        if len(set(keys)) != len(keys):
            raise ValueError("api keys must be unique on a venue")
        return self


class Scenario(BaseModel):
    """A whole paper world: fair values, markets and the venues that list them."""

    model_config = ConfigDict(extra="forbid")

    name: str = "paper"
    step_interval_s: float = Field(default=0.05, gt=0, description="wall seconds between market steps")
    fair_values: list[FairValueParams] = Field(min_length=1)
    markets: list[MarketSettings] = Field(min_length=1)
    venues: list[VenueSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [v.name for v in self.venues]
        if len(set(names)) != len(names):
            raise ValueError("venue names must be unique")
        known = {m.symbol for m in self.markets}
        for venue in self.venues:
            for symbol in venue.symbols or []:
                if symbol.upper() not in known:
                    raise ValueError(f"venue {venue.name} lists {symbol}, which is not in markets")
            for symbol in venue.participants_by_symbol:
                if symbol.upper() not in known:
                    raise ValueError(f"venue {venue.name} has participants for unknown market {symbol}")
        priced = {(f.asset, f.quote) for f in self.fair_values}
        for market in self.markets:
            base, _, quote = market.symbol.partition("/")
            if not _priceable(base, quote, priced):
                raise ValueError(f"no fair value prices {market.symbol}: add one for {base} or its legs")
        return self

    def venue_markets(self, venue: VenueSettings) -> list[MarketSettings]:
        """The markets ``venue`` lists, in scenario order."""
        wanted = None if venue.symbols is None else {s.upper() for s in venue.symbols}
        return [m for m in self.markets if wanted is None or m.symbol in wanted]


def _priceable(base: str, quote: str, priced: set[tuple[str, str]]) -> bool:
    if (base, quote) in priced or (quote, base) in priced:
        return True
    # A cross: both legs priced in the same quote (BERA/BTC from BERA/USDT and BTC/USDT).
    return any((base, q) in priced and (quote, q) in priced for _, q in priced)


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario YAML file; :class:`ScenarioError` names the file and key."""
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a mapping at the top level")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {_key(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ScenarioError("\n".join(lines)) from exc


def _key(loc: tuple[int | str, ...]) -> str:
    """``('venues', 1, 'accounts', 0, 'api_key')`` -> ``venues[1].accounts[0].api_key``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"
