"""Typed configuration of one stacked-strategy instance: pydantic models, templates, builder.

A strategy YAML becomes a :class:`StrategyConfig` once, at the edge (``daemon/config_loader.py``
adds the file name to error messages); everything downstream reads typed fields.

Conventions:

* Quantities and prices (``hourly_quantity``, ``quantity``, inventory ``target`` ...) are
  exact ``Decimal``; they may be written as strings (``"25.5"``) or numbers (``25.5``), and a
  float is converted through ``str()`` so ``0.1`` stays ``0.1``.
* Spreads and zones are in basis points of the reference price, times in seconds (floats).
* Venue names are our labels (``alpha``), symbols are ccxt unified (``BERA/USDT``).
* Secrets never appear here: a venue names the environment variables (or systemd credential
  files) that hold its API key and secret.
"""

from __future__ import annotations

import enum
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from strategies.book import DEFAULT_BOOK_DEPTH
from strategies.calibration import CalibrationConfig
from strategies.models.base import PricingModelConfig
from strategies.risk import RiskConfig

# --------------------------------------------------------------------------- value types


def _to_decimal(value: object) -> Decimal:
    """Strings, ints and floats (through ``str``, so 0.1 is 0.1) become exact decimals."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):  # a YAML `yes` is not a number
        raise ValueError(f"expected a decimal number, got {value!r}")
    elif isinstance(value, int | float):
        result = Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip().replace("_", ""))
        except InvalidOperation:
            raise ValueError(f"expected a decimal number, got {value!r}") from None
    else:
        raise ValueError(f"expected a decimal number, got {value!r}")
    if not result.is_finite():
        raise ValueError(f"expected a finite decimal number, got {value!r}")
    return result


DecimalValue = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="json"),
]
"""A Decimal written as a string or a number; serialised to YAML/JSON as a string."""

_PERIOD_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hour|hours)?\s*$")
_PERIOD_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "hours": 3600,
}


def _to_seconds(value: object) -> float:
    """A period as seconds: ``300``, ``"300"``, ``"5min"``, ``"1h"``, ``"30s"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a period like '5min' or seconds, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _PERIOD_RE.match(value)):
        unit = match.group(2) or "s"
        seconds = float(match.group(1)) * _PERIOD_UNITS[unit]
    else:
        raise ValueError(f"expected a period like '5min', '1h', '30s' or seconds, got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"expected a positive period, got {value!r}")
    return seconds


PeriodSeconds = Annotated[float, BeforeValidator(_to_seconds)]

_NAME = r"^[a-z][a-z0-9_]{0,15}$"
# Line ids go into client order ids (<= 36 chars with the instance prefix and a counter).
_LINE_ID = r"^[A-Za-z0-9_]{1,10}$"
_SYMBOL = r"^[A-Z0-9]+/[A-Z0-9]+$"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

PATTERN_MEANINGS = {
    _NAME: "a venue name: lowercase letters, digits and _, starting with a letter, at most 16",
    _LINE_ID: "a line id: letters, digits and _, at most 10 (it goes into client order ids)",
    _SYMBOL: "a ccxt unified symbol like 'BERA/USDT'",
    _ENV_NAME: "an environment variable name",
}
"""What each name pattern means, for error messages."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class SidesMode(enum.StrEnum):
    """Which sides a line quotes."""

    BID = "bid"
    ASK = "ask"
    BOTH = "both"

    @property
    def bid(self) -> bool:
        return self is not SidesMode.ASK

    @property
    def ask(self) -> bool:
        return self is not SidesMode.BID


class VolumeSpreadMode(enum.StrEnum):
    """How a busier market (volume coefficient > 1) moves a line's spread or zone."""

    TIGHTEN = "tighten"
    WIDEN = "widen"
    OFF = "off"


class VolumeSizeMode(enum.StrEnum):
    """How a busier market (volume coefficient > 1) moves a line's size."""

    GROW = "grow"
    SHRINK = "shrink"
    OFF = "off"


class InventoryDenominator(enum.StrEnum):
    """Denominator of the inventory coefficient: the target (seed 004) or the max deviation."""

    TARGET = "target"
    MAX_DEVIATION = "max_deviation"


class InventoryPriceMethod(enum.StrEnum):
    """How the inventory is priced (seed 004)."""

    MANUAL = "manual"
    ACCOUNTING = "accounting"  # weighted average cost of fills, fees included
    MARK_TO_MARKET = "mark_to_market"  # the current reference price


# --------------------------------------------------------------------------- sections


class VenueUrls(_Model):
    """URL overrides for a venue (the paper venue, a testnet). Unset: the exchange's own."""

    rest: str | None = Field(default=None, description="REST base, e.g. http://127.0.0.1:18401/api/v3")
    ws: str | None = Field(default=None, description="WebSocket base, e.g. ws://127.0.0.1:18401")


class VenueCredentials(_Model):
    """Where the API key and secret come from. Names only: the values never live in YAML."""

    api_key_env: str | None = Field(default=None, pattern=_ENV_NAME)
    secret_env: str | None = Field(default=None, pattern=_ENV_NAME)
    api_key_file: str | None = Field(default=None, description="name under $CREDENTIALS_DIRECTORY")
    secret_file: str | None = Field(default=None, description="name under $CREDENTIALS_DIRECTORY")


class VenueConfig(_Model):
    """One venue: the ccxt exchange id that speaks to it and the symbols to stream there."""

    exchange: str = Field(default="binance", pattern=r"^[a-z0-9]+$", description="ccxt exchange id")
    urls: VenueUrls = VenueUrls()
    credentials: VenueCredentials = VenueCredentials()
    symbols: list[Annotated[str, Field(pattern=_SYMBOL)]] = Field(min_length=1)
    stale_after_s: float = Field(default=5.0, gt=0, description="silence after which the book is stale")
    book_depth: int = Field(
        default=DEFAULT_BOOK_DEPTH,
        ge=1,
        description="levels the native feed keeps per book side; the far end is dropped",
    )


class InventoryConfig(_Model):
    """Inventory of the base asset across all venues, and how it leans the quotes."""

    target: DecimalValue = Field(ge=0, description="total base across venues we aim to hold")
    max_deviation: DecimalValue = Field(gt=0, description="beyond target ± this, the growing side stops")
    denominator: InventoryDenominator = InventoryDenominator.TARGET
    price_method: InventoryPriceMethod = InventoryPriceMethod.ACCOUNTING
    manual_price: DecimalValue | None = Field(default=None, gt=0)
    no_loss_margin_bps: float | None = Field(
        default=None, ge=0, description="never sell below / buy above the inventory price by more than this"
    )
    skew: float = Field(
        default=1.0, ge=0, le=1, description="spread lean: bid × (1 + skew·c), ask × (1 − skew·c)"
    )
    size_skew: float = Field(default=1.0, ge=0, le=1, description="growing side's size × (1 − size_skew·|c|)")
    venue_targets: dict[str, DecimalValue] | None = Field(
        default=None, description="base per venue for rebalancing; default: target split evenly"
    )
    rebalance_threshold: float = Field(
        default=0.25, gt=0, description="suggest a transfer when a venue is off its share by this fraction"
    )

    @model_validator(mode="after")
    def _consistent(self) -> InventoryConfig:
        problems = []
        if self.price_method is InventoryPriceMethod.MANUAL and self.manual_price is None:
            problems.append("manual_price: required when price_method is 'manual'")
        if self.denominator is InventoryDenominator.TARGET and self.target == 0:
            problems.append("target: must be above 0 when denominator is 'target' (it divides)")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class ReferenceConfig(_Model):
    """The reference price source (seed 004 "smart pricing selection")."""

    kind: Literal["aggregated", "component", "liquidity_weighted", "single"] = "aggregated"
    venues: list[str] | None = Field(default=None, description="component/single: which venues")
    depth_bps: float = Field(default=50.0, gt=0, description="liquidity_weighted: depth window")
    max_age_s: float = Field(default=5.0, gt=0, description="books older than this are excluded")
    price: Literal["mid", "microprice"] = "mid"

    @model_validator(mode="after")
    def _venues_for_kind(self) -> ReferenceConfig:
        if self.kind == "single" and (not self.venues or len(self.venues) != 1):
            raise ValueError("venues: 'single' needs exactly one venue")
        if self.kind == "component" and not self.venues:
            raise ValueError("venues: 'component' needs at least one venue")
        return self


class VolumeConfig(_Model):
    """Volume coefficient (seed 004): short over long moving-average ratios, combined, bounded."""

    periods: list[PeriodSeconds] = Field(default=[300.0, 900.0, 1800.0], min_length=2)
    average: Literal["sma", "ewma"] = "sma"
    volume_type: Literal["base", "quote", "imbalance", "ratio", "both"] = "base"
    combine: Literal["min", "max", "mid"] = "min"
    min_coefficient: float = Field(default=0.2, gt=0)
    max_coefficient: float = Field(default=3.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> VolumeConfig:
        if list(self.periods) != sorted(set(self.periods)):
            raise ValueError("periods: expected distinct periods from shortest to longest")
        if not self.min_coefficient <= 1.0 <= self.max_coefficient:
            raise ValueError("min_coefficient: expected min_coefficient <= 1 <= max_coefficient")
        return self


class _LineConfig(_Model):
    id: str = Field(pattern=_LINE_ID)
    enabled: bool = True
    symbol: str = Field(pattern=_SYMBOL)
    venues: list[str] | None = Field(default=None, description="default: every venue listing the symbol")
    sides: SidesMode = SidesMode.BOTH
    timeout_s: float = Field(gt=0, description="an order older than this is refreshed")
    refresh_tolerance_bps: float = Field(default=0.0, ge=0, description="keep a resting order this close")
    size_tolerance: float = Field(default=0.0, ge=0, lt=1, description="keep it if its size is this close")
    min_order_age_s: float = Field(default=0.0, ge=0, description="never replace a younger order")
    volume_spread: VolumeSpreadMode = VolumeSpreadMode.OFF
    volume_size: VolumeSizeMode = VolumeSizeMode.OFF
    inventory_skew: bool = Field(default=True, description="lean this line's quotes by the inventory")


class TobLineConfig(_LineConfig):
    """A top-of-book line: best bid + tick / best ask − tick on each venue, held in a zone.

    The bid zone is [ref·(1 − max_zone_bps), ref·(1 − min_zone_bps)], the ask zone its mirror.
    Size per order = hourly_quantity · timeout_s / 3600, and fills per side in the last hour
    never exceed hourly_quantity.
    """

    hourly_quantity: DecimalValue = Field(gt=0, description="base quantity per hour per side")
    min_zone_bps: float = Field(default=0.0, ge=0)
    max_zone_bps: float = Field(gt=0)
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _zone(self) -> TobLineConfig:
        if self.min_zone_bps >= self.max_zone_bps:
            raise ValueError("min_zone_bps: expected below max_zone_bps")
        return self


class PassiveLineConfig(_LineConfig):
    """A passive line: a ladder at mid_spread_bps (bounded) from the reference price.

    Level i sits ``i · level_step_bps`` beyond level 0; its size is
    ``quantity · level_weights[i] · (1 + U(−r, r))``, redrawn every ``timeout_s``.
    """

    mid_spread_bps: float = Field(gt=0)
    min_spread_bps: float = Field(default=0.0, ge=0)
    max_spread_bps: float = Field(gt=0)
    quantity: DecimalValue = Field(gt=0, description="base quantity per order at level 0")
    randomization_factor: float = Field(default=0.0, ge=0, lt=1)
    levels: int = Field(default=1, ge=1, le=20)
    level_step_bps: float = Field(default=0.0, ge=0)
    level_weights: list[Annotated[float, Field(gt=0)]] | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    reference: ReferenceConfig | None = Field(default=None, description="override the strategy's reference")
    pricing: PricingModelConfig | None = Field(
        default=None, description="a pricing model's depths replace mid_spread_bps (strategies/models)"
    )
    calibration: CalibrationConfig | None = Field(
        default=None, description="online sigma/A/k for the pricing model when not pinned"
    )

    @model_validator(mode="after")
    def _bounds(self) -> PassiveLineConfig:
        problems = []
        if self.min_spread_bps > self.max_spread_bps:
            problems.append("min_spread_bps: expected at most max_spread_bps")
        if self.levels > 1 and self.level_step_bps <= 0:
            problems.append("level_step_bps: expected above 0 when levels > 1")
        if self.level_weights is not None and len(self.level_weights) != self.levels:
            problems.append(f"level_weights: expected {self.levels} weights (one per level)")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def weight(self, level: int) -> float:
        return 1.0 if self.level_weights is None else self.level_weights[level]


class ExecutionConfig(_Model):
    """How the order manager treats each venue."""

    startup_policy: Literal["cancel", "adopt"] = Field(
        default="cancel",
        description="our orders found resting at start (left by a previous run): cancel them, or adopt them",
    )


class StrategyConfig(_Model):
    """One stacked-strategy instance: venues, inventory, reference, volume, TOB and passive lines.

    ``risk`` is the risk engine's own section model (``strategies/risk.py``), validated here
    with the rest of the file so one ``stackmm config validate`` checks everything.
    """

    instance: str = Field(pattern=r"^[A-Za-z0-9_-]{1,16}$", description="Redis prefix, order id prefix")
    base: str = Field(pattern=r"^[A-Z0-9]+$")
    quotes: list[Annotated[str, Field(pattern=r"^[A-Z0-9]+$")]] = Field(min_length=1)
    venues: dict[Annotated[str, Field(pattern=_NAME)], VenueConfig] = Field(min_length=1)
    inventory: InventoryConfig
    reference: ReferenceConfig = ReferenceConfig()
    volume: VolumeConfig = VolumeConfig()
    tob_lines: list[TobLineConfig] = []
    passive_lines: list[PassiveLineConfig] = []
    risk: RiskConfig | None = Field(default=None, description="risk limits (strategies/risk.py)")
    execution: ExecutionConfig = ExecutionConfig()

    @model_validator(mode="after")
    def _cross_references(self) -> StrategyConfig:
        problems: list[str] = []
        known = f"(venues: {', '.join(sorted(self.venues))})"
        seen: dict[str, str] = {}
        for section, lines in (("tob_lines", self.tob_lines), ("passive_lines", self.passive_lines)):
            for i, line in enumerate(lines):
                where = f"{section}[{i}]"
                if line.id in seen:
                    problems.append(f"{where}.id: {line.id!r} already used by {seen[line.id]}")
                seen[line.id] = where
                base, quote = line.symbol.split("/")
                if base != self.base or quote not in self.quotes:
                    problems.append(
                        f"{where}.symbol: expected {self.base}/<one of {', '.join(self.quotes)}>, "
                        f"got {line.symbol!r}"
                    )
                for venue in line.venues or []:
                    if venue not in self.venues:
                        problems.append(f"{where}.venues: unknown venue {venue!r} {known}")
                    elif line.symbol not in self.venues[venue].symbols:
                        problems.append(f"{where}.venues: venue {venue!r} does not list {line.symbol}")
                if not line.venues and not any(line.symbol in v.symbols for v in self.venues.values()):
                    problems.append(f"{where}.symbol: no venue lists {line.symbol}")
        refs: list[tuple[str, ReferenceConfig | None]] = [("reference", self.reference)]
        refs += [(f"passive_lines[{i}].reference", p.reference) for i, p in enumerate(self.passive_lines)]
        for where, ref in refs:
            for venue in (ref.venues if ref is not None else None) or []:
                if venue not in self.venues:
                    problems.append(f"{where}.venues: unknown venue {venue!r} {known}")
        for venue in self.inventory.venue_targets or {}:
            if venue not in self.venues:
                problems.append(f"inventory.venue_targets: unknown venue {venue!r} {known}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # ------------------------------------------------------------------ derived views

    def line_venues(self, line: TobLineConfig | PassiveLineConfig) -> list[str]:
        """The venues a line quotes on: its own list, else every venue listing its symbol."""
        if line.venues:
            return list(line.venues)
        return [name for name, venue in self.venues.items() if line.symbol in venue.symbols]

    @property
    def lines(self) -> list[TobLineConfig | PassiveLineConfig]:
        """Every line, TOB first, in file order."""
        return [*self.tob_lines, *self.passive_lines]

    def to_yaml_data(self) -> dict[str, Any]:
        """Plain data (decimals as strings) that loads back to an equal config."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        return data


# --------------------------------------------------------------------------- builder


class StrategyConfigBuilder:
    """Programmatic construction of a :class:`StrategyConfig`, equivalent to the YAML.

    >>> config = (StrategyConfigBuilder("bera1")
    ...     .set_basic_info("BERA", ["USDT"])
    ...     .add_venue("alpha", symbols=["BERA/USDT"])
    ...     .set_inventory(target="1500", max_deviation="750")
    ...     .add_tob_line("tob1", "BERA/USDT", hourly_quantity="75", max_zone_bps=25)
    ...     .add_passive_line("pas1", "BERA/USDT", mid_spread_bps=12, quantity="40", max_spread_bps=40)
    ...     .build())

    Keyword arguments are the YAML keys; ``build()`` validates exactly as a file would.
    """

    def __init__(self, instance: str) -> None:
        self._data: dict[str, Any] = {
            "instance": instance,
            "venues": {},
            "tob_lines": [],
            "passive_lines": [],
        }

    def set_basic_info(self, base: str, quotes: list[str]) -> StrategyConfigBuilder:
        self._data["base"] = base
        self._data["quotes"] = list(quotes)
        return self

    def add_venue(
        self,
        name: str,
        *,
        symbols: list[str],
        exchange: str = "binance",
        rest_url: str | None = None,
        ws_url: str | None = None,
        api_key_env: str | None = None,
        secret_env: str | None = None,
        **extra: Any,
    ) -> StrategyConfigBuilder:
        venue: dict[str, Any] = {"exchange": exchange, "symbols": list(symbols), **extra}
        urls = {k: v for k, v in (("rest", rest_url), ("ws", ws_url)) if v is not None}
        if urls:
            venue["urls"] = urls
        creds = {k: v for k, v in (("api_key_env", api_key_env), ("secret_env", secret_env)) if v is not None}
        if creds:
            venue["credentials"] = creds
        self._data["venues"][name] = venue
        return self

    def set_inventory(self, **inventory: Any) -> StrategyConfigBuilder:
        self._data["inventory"] = inventory
        return self

    def set_reference(self, **reference: Any) -> StrategyConfigBuilder:
        self._data["reference"] = reference
        return self

    def set_volume(self, **volume: Any) -> StrategyConfigBuilder:
        self._data["volume"] = volume
        return self

    def set_risk(self, **risk: Any) -> StrategyConfigBuilder:
        self._data["risk"] = risk
        return self

    def add_tob_line(self, id: str, symbol: str, **line: Any) -> StrategyConfigBuilder:
        self._data["tob_lines"].append({"id": id, "symbol": symbol, **line})
        return self

    def add_passive_line(self, id: str, symbol: str, **line: Any) -> StrategyConfigBuilder:
        self._data["passive_lines"].append({"id": id, "symbol": symbol, **line})
        return self

    def build(self) -> StrategyConfig:
        """Validate and return the config (raises pydantic's ``ValidationError``)."""
        return StrategyConfig.model_validate(self._data)


# --------------------------------------------------------------------------- templates

_TEMPLATE_VENUES = ("binance", "bybit", "gateio")


def _template_builder(instance: str) -> StrategyConfigBuilder:
    builder = StrategyConfigBuilder(instance).set_basic_info("BERA", ["USDT"])
    for name in _TEMPLATE_VENUES:
        upper = name.upper()
        builder.add_venue(
            name,
            exchange=name,
            symbols=["BERA/USDT"],
            api_key_env=f"STACKMM_{upper}_API_KEY",
            secret_env=f"STACKMM_{upper}_SECRET",
        )
    return builder


def conservative_template() -> StrategyConfig:
    """Seed 004's conservative BERA/USDT set-up: wide, small, slow, strongly inventory-led."""
    return (
        _template_builder("bera_cons")
        .set_inventory(
            target="1000",
            max_deviation="500",
            denominator="target",
            price_method="accounting",
            no_loss_margin_bps=50,
            skew=1.0,
            size_skew=1.0,
        )
        .set_reference(kind="aggregated", max_age_s=5)
        .set_volume(periods=["5min", "15min", "30min"], combine="min", min_coefficient=0.2)
        .add_tob_line(
            "tob1",
            "BERA/USDT",
            sides="both",
            hourly_quantity="50",
            min_zone_bps=10,
            max_zone_bps=30,
            timeout_s=30,
            refresh_tolerance_bps=2,
            min_order_age_s=2,
            volume_spread="widen",
            volume_size="shrink",
        )
        .add_passive_line(
            "pas1",
            "BERA/USDT",
            mid_spread_bps=15,
            min_spread_bps=10,
            max_spread_bps=60,
            quantity="25",
            randomization_factor=0.03,
            levels=3,
            level_step_bps=10,
            level_weights=[1.0, 0.6, 0.4],
            timeout_s=120,
            refresh_tolerance_bps=3,
            size_tolerance=0.1,
            min_order_age_s=5,
            volume_spread="widen",
        )
        .build()
    )


def aggressive_template() -> StrategyConfig:
    """Seed 004's aggressive set-up: tight, larger, faster, volume-seeking."""
    return (
        _template_builder("bera_aggr")
        .set_inventory(
            target="1500",
            max_deviation="750",
            denominator="max_deviation",
            price_method="accounting",
            skew=0.5,
            size_skew=0.5,
        )
        .set_reference(kind="liquidity_weighted", depth_bps=25, max_age_s=3)
        .set_volume(periods=["5min", "15min", "30min"], combine="mid", max_coefficient=3.0)
        .add_tob_line(
            "tob1",
            "BERA/USDT",
            sides="both",
            hourly_quantity="75",
            min_zone_bps=2,
            max_zone_bps=25,
            timeout_s=15,
            refresh_tolerance_bps=1,
            min_order_age_s=1,
            volume_spread="tighten",
            volume_size="grow",
        )
        .add_passive_line(
            "pas1",
            "BERA/USDT",
            mid_spread_bps=12,
            min_spread_bps=5,
            max_spread_bps=40,
            quantity="40",
            randomization_factor=0.04,
            levels=4,
            level_step_bps=6,
            timeout_s=60,
            refresh_tolerance_bps=2,
            size_tolerance=0.1,
            min_order_age_s=2,
            volume_spread="tighten",
            volume_size="grow",
        )
        .build()
    )


TEMPLATES = {"conservative": conservative_template, "aggressive": aggressive_template}
"""Template name -> factory; ``stackmm config template NAME`` prints one as YAML."""
